"""lmsconnect: one unified, typed, async view of learning-management systems.

>>> import lmsconnect
>>> async with lmsconnect.connect("moodle", base_url="https://lms.example.org", token=token) as lms:
...     async for course in lms.list(lmsconnect.CourseRevision):
...         print(course.title, course.status)
...     result = await lms.enroll_user(user_id=user.id, course_revision_id=course.id)

Plugin authors: see `lmsconnect.plugin`; test doubles and the conformance kit: `lmsconnect.testing`.
"""

from __future__ import annotations

from ._actions import (
    ActionResult,
    CompleteCourse,
    CourseInput,
    DeactivateCourse,
    EnrollUser,
    ItemError,
    ItemResult,
    ItemStatus,
    UpsertCourseItem,
    UpsertCourses,
)
from ._api import available_connectors, connect, register_connector
from ._budget_postgres import PostgresBudgets
from ._capabilities import Capabilities, Support
from ._connector import CheckReport, CheckStatus, Connector
from ._errors import (
    ActionFailed,
    AuthenticationError,
    ConfigurationError,
    DestructiveActionRefused,
    InvalidInput,
    InvalidRemoteResponse,
    LMSConnectError,
    NotFound,
    NotSupported,
    PermissionDenied,
    PluginLoadError,
    RateLimited,
    RemoteError,
)
from ._http import HttpOptions, SharedBudget
from ._models import (
    Course,
    CourseItem,
    CourseItemType,
    CourseProgression,
    CourseProvider,
    CourseRevision,
    CourseType,
    ProgressionStatus,
    RevisionSkill,
    RevisionStatus,
    Skill,
    User,
    UserRole,
    UserStatus,
)
from ._registry import ConnectorInfo
from ._store import (
    Change,
    ChangeKind,
    DeletionGuard,
    PostgresStore,
    SQLiteStore,
    StateStore,
    StoreError,
    SyncInProgress,
    open_store,
)
from ._sync import ModelReport, SyncProgress, SyncReport, sync

__version__ = "0.1.0"

__all__ = [
    "ActionFailed",
    "ActionResult",
    "AuthenticationError",
    "Capabilities",
    "Change",
    "ChangeKind",
    "CheckReport",
    "CheckStatus",
    "CompleteCourse",
    "ConfigurationError",
    "Connector",
    "ConnectorInfo",
    "Course",
    "CourseInput",
    "CourseItem",
    "CourseItemType",
    "CourseProgression",
    "CourseProvider",
    "CourseRevision",
    "CourseType",
    "DeactivateCourse",
    "DeletionGuard",
    "DestructiveActionRefused",
    "EnrollUser",
    "HttpOptions",
    "InvalidInput",
    "InvalidRemoteResponse",
    "ItemError",
    "ItemResult",
    "ItemStatus",
    "LMSConnectError",
    "ModelReport",
    "NotFound",
    "NotSupported",
    "PermissionDenied",
    "PluginLoadError",
    "PostgresBudgets",
    "PostgresStore",
    "ProgressionStatus",
    "RateLimited",
    "RemoteError",
    "RevisionSkill",
    "RevisionStatus",
    "SQLiteStore",
    "SharedBudget",
    "Skill",
    "StateStore",
    "StoreError",
    "Support",
    "SyncInProgress",
    "SyncProgress",
    "SyncReport",
    "UpsertCourseItem",
    "UpsertCourses",
    "User",
    "UserRole",
    "UserStatus",
    "__version__",
    "available_connectors",
    "connect",
    "open_store",
    "register_connector",
    "sync",
]
