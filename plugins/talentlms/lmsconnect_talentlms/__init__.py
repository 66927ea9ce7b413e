"""lmsconnect connector for TalentLMS (API v1, and API v2 for course edits where the key has it).

>>> import lmsconnect
>>> async with lmsconnect.connect("talentlms", domain="acme.talentlms.com", api_key=key) as lms:
...     async for user in lms.list(lmsconnect.User):
...         print(user.work_email, user.status)

The quirks (without API v2 deactivate deletes and courses cannot be edited; trainer enrolments rolled
back; durations in whole days) are in the capability table, ``TalentLMSConnector.capabilities`` (one
per mode), and in docs/talentlms.md.
An offline TalentLMS: `lmsconnect_talentlms.testing.TalentLMSSimulator`.
"""

from __future__ import annotations

from ._connector import (
    COURSE_BATCH_FAILED,
    COURSE_UPDATE_NOT_SUPPORTED,
    ENROLLED_AS_TRAINER,
    MAX_DURATION_MINUTES,
    ROLLBACK_FAILED,
    TalentLMSConfig,
    TalentLMSConnector,
)

__all__ = [
    "COURSE_BATCH_FAILED",
    "COURSE_UPDATE_NOT_SUPPORTED",
    "ENROLLED_AS_TRAINER",
    "MAX_DURATION_MINUTES",
    "ROLLBACK_FAILED",
    "TalentLMSConfig",
    "TalentLMSConnector",
]
