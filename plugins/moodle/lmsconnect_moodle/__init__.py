"""lmsconnect connector for Moodle 5.x (web services, REST protocol).

>>> import lmsconnect
>>> async with lmsconnect.connect("moodle", base_url="https://moodle.example.org", token=token) as lms:
...     async for skill in lms.list(lmsconnect.Skill):
...         print(skill.name)

What the site administrator sets up (web services, REST, the service's functions, the token):
docs/moodle-setup.md. The quirks (HTTP-200 exceptions, completion aggregated by cron, scores only on
graded activities) are in the capability table, ``MoodleConnector.capabilities``. An offline Moodle:
`lmsconnect_moodle.testing.MoodleSimulator`.
"""

from __future__ import annotations

from ._capabilities import CAPABILITIES, REQUIRED_FUNCTIONS
from ._connector import (
    COMPLETION_NOT_TRACKED,
    NO_GRADED_ACTIVITY,
    NO_MANUAL_ENROLMENT,
    MoodleConfig,
    MoodleConnector,
)
from ._params import decode_params, encode_params

__all__ = [
    "CAPABILITIES",
    "COMPLETION_NOT_TRACKED",
    "NO_GRADED_ACTIVITY",
    "NO_MANUAL_ENROLMENT",
    "REQUIRED_FUNCTIONS",
    "MoodleConfig",
    "MoodleConnector",
    "decode_params",
    "encode_params",
]
