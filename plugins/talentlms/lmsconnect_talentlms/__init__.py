"""lmsconnect connector for TalentLMS (API v1).

>>> import lmsconnect
>>> async with lmsconnect.connect("talentlms", domain="acme.talentlms.com", api_key=key) as lms:
...     async for user in lms.list(lmsconnect.User):
...         print(user.work_email, user.status)

The quirks (deactivate deletes, trainer enrolments rolled back, durations in whole days, no course
edits in v1) are in the capability table, ``TalentLMSConnector.capabilities``, and in docs/talentlms.md.
An offline TalentLMS: `lmsconnect_talentlms.testing.TalentLMSSimulator`.
"""

from __future__ import annotations

from ._connector import (
    COURSE_UPDATE_NOT_SUPPORTED,
    ENROLLED_AS_TRAINER,
    MAX_DURATION_MINUTES,
    ROLLBACK_FAILED,
    TalentLMSConfig,
    TalentLMSConnector,
)

__all__ = [
    "COURSE_UPDATE_NOT_SUPPORTED",
    "ENROLLED_AS_TRAINER",
    "MAX_DURATION_MINUTES",
    "ROLLBACK_FAILED",
    "TalentLMSConfig",
    "TalentLMSConnector",
]
