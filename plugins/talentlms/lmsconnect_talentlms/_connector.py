"""The TalentLMS connector: API v1 for reads and creates, API v2 (where the key has it) for course edits."""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import datetime as dt
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from typing import Any, ClassVar, Final, TypeVar, cast

import attrs

from lmsconnect import (
    ActionFailed,
    ActionResult,
    AuthenticationError,
    Course,
    CourseItem,
    CourseItemType,
    CourseProgression,
    CourseRevision,
    DeactivateCourse,
    EnrollUser,
    InvalidInput,
    InvalidRemoteResponse,
    ItemError,
    ItemResult,
    ItemStatus,
    LMSConnectError,
    NotFound,
    PermissionDenied,
    ProgressionStatus,
    RateLimited,
    RemoteError,
    RevisionStatus,
    UpsertCourses,
    User,
    UserRole,
    UserStatus,
)
from lmsconnect.plugin import (
    ActionFlag,
    Capabilities,
    CheckItem,
    CheckStatus,
    Connector,
    ConnectorSpec,
    HttpClient,
    RateBudget,
    RateWindow,
    Response,
    Secret,
    action_support,
    announce_pages,
    announce_total,
    config_field,
    model_support,
    retry_after,
    stream_map,
    structure_wire,
    total_wanted,
)

from ._v2 import BATCH_LIMIT, DEFAULT_API_VERSION, V2_ROUTES, TaskState, V2Client
from ._wire import (
    CategoryRow,
    Code,
    CourseDetail,
    CourseRevisionRow,
    CourseRow,
    CourseUnits,
    CreatedCourse,
    CustomFieldRow,
    EnrolledUser,
    RateLimitRow,
    RoleRow,
    UnitRow,
    UserRow,
    build_path,
    days_from_minutes,
    error_of,
    is_talent_id,
    make_wire_converter,
    minutes_from_days,
)

__all__ = ["TalentLMSConfig", "TalentLMSConnector"]

SLUG: Final = "talentlms"
#: Calls per hour when /v1/ratelimit cannot be read: the Small and Basic plans' budget.
DEFAULT_HOURLY_BUDGET: Final = 2000
BURST_LIMIT: Final = 200
BURST_PERIOD_S: Final = 5.0
#: Seconds added to each window's end for the gap between our send time and TalentLMS's count of the call.
RATE_MARGIN_S: Final = 0.25
HOUR_S: Final = 3600.0
#: Times a write refused with 429 is sent again (after the budget's pause) before RateLimited is raised.
WRITE_429_ATTEMPTS: Final = 5
#: Items sent to v2 batch tasks that a connection remembers for wait_until_visible (the oldest beyond it
#: stay `accepted` if waited for).
MAX_PENDING: Final = 100_000

# Item error codes callers branch on.
COURSE_UPDATE_NOT_SUPPORTED: Final = "LMS.COURSE_UPDATE_NOT_SUPPORTED"
#: A v2 batch task failed an item, or finished without the course showing the change.
COURSE_BATCH_FAILED: Final = "LMS.COURSE_BATCH_FAILED"
ENROLLED_AS_TRAINER: Final = "LMS.ENROLLED_AS_TRAINER"
ROLLBACK_FAILED: Final = "LMS.ROLLBACK_FAILED"

_INSTRUCTOR: Final = "instructor"

#: Longest course upsert_courses accepts, in days of `time_limit`. TalentLMS documents no maximum; a time
#: limit is how long a learner keeps access after enrolling, and ten years is past any training plan
#: while keeping every enrolment's expiry a real date.
MAX_DURATION_DAYS: Final = 3650
MAX_DURATION_MINUTES: Final = MAX_DURATION_DAYS * 24 * 60

_T = TypeVar("_T")

#: TalentLMS's default account types (the v1 reference and its examples). Custom types are named by the
#: domain's admins and say nothing reliable about the role: they are UNKNOWN, with the name kept.
_USER_ROLES: Final = {
    "superadmin": UserRole.ADMIN,
    "admin-type": UserRole.ADMIN,
    "trainer-type": UserRole.INSTRUCTOR,
    "learner-type": UserRole.LEARNER,
    "learner": UserRole.LEARNER,  # the reference's usersignup example
}
#: Unit types (``units[].type``) by their lower-cased parts: TalentLMS writes some types as
#: "Presentation | Document" or "SCORM | xAPI | cmi5", so each "|"-separated part is looked up in turn.
_UNIT_TYPES: Final = {
    "section": CourseItemType.SECTION,
    "content": CourseItemType.CONTENT,
    "unit": CourseItemType.CONTENT,
    "text": CourseItemType.CONTENT,
    "web content": CourseItemType.LINK,
    "iframe": CourseItemType.LINK,
    "video": CourseItemType.VIDEO,
    "audio": CourseItemType.AUDIO,
    "document": CourseItemType.DOCUMENT,
    "presentation": CourseItemType.DOCUMENT,
    "file": CourseItemType.DOCUMENT,
    "scorm": CourseItemType.SCORM,
    "xapi": CourseItemType.SCORM,
    "tincan": CourseItemType.SCORM,
    "cmi5": CourseItemType.SCORM,
    "test": CourseItemType.ASSESSMENT,
    "survey": CourseItemType.SURVEY,
    "assignment": CourseItemType.ASSIGNMENT,
    "ilt": CourseItemType.LIVE_SESSION,
    "instructor-led training": CourseItemType.LIVE_SESSION,
}


@attrs.frozen(kw_only=True)
class TalentLMSConfig:
    """How to reach one TalentLMS domain."""

    api_key: Secret = config_field(
        help="The API key (super-admin: Account & Settings → Basic settings → Enable API)", secret=True
    )
    domain: str | None = config_field(
        default=None,
        help="Your TalentLMS domain (give this or base_url)",
        example="acme.talentlms.com",
    )
    base_url: str | None = config_field(
        default=None,
        help="The API root instead of domain, e.g. for a mapped domain or a simulator",
        example="https://acme.talentlms.com/api",
    )
    hourly_budget: int | None = config_field(
        default=None,
        help="Calls per hour this connection may spend; default: the plan limit /v1/ratelimit reports "
        "(2,000 if it cannot be read). Set it lower to leave room for other integrations",
    )
    page_size: int = config_field(default=500, help="Users per page when listing users")
    concurrency: int = config_field(
        default=16, help="Course-detail calls in flight while reading course progressions"
    )
    utc_offset_minutes: int = config_field(
        default=0,
        help="Your domain's time-zone offset from UTC, in minutes; used only for formatted dates that "
        "have no *_timestamp sibling (user and course creation dates, course last_update_on)",
    )
    category_names: bool = config_field(
        default=False,
        help="Fill CourseRevision.categories with category names (outermost first): one more call "
        "(GET /v1/categories) per read of course revisions",
    )
    custom_field_names: bool = config_field(
        default=False,
        help="Key User.custom_fields by the fields' names instead of their keys (custom_field_1...): one "
        "more call (GET /v1/getcustomregistrationfields) per read of users",
    )
    api_v2: str = config_field(
        default="auto",
        help="TalentLMS API v2 for course updates and reversible deactivation: auto (probe once per "
        "connection, v1 only when v2 answers 401/403/404), on (use it, no probe), off (v1 only)",
        example="auto",
    )
    api_version: str = config_field(
        default=DEFAULT_API_VERSION,
        help="The X-API-Version date sent on API v2 calls (TalentLMS publishes no value; this default "
        "is pinned)",
        example=DEFAULT_API_VERSION,
    )

    def __attrs_post_init__(self) -> None:
        if bool(self.domain) == bool(self.base_url):
            raise ValueError("give exactly one of domain (acme.talentlms.com) and base_url")
        if self.domain and ("/" in self.domain or ":" in self.domain):
            raise ValueError(
                f"domain must be a host name like acme.talentlms.com, not {self.domain!r}; "
                "pass a URL as base_url"
            )
        if self.base_url and not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with https:// (got {self.base_url!r})")
        if ":" in self.api_key.reveal():
            # Basic auth sends "key:" and the server splits at the first colon: such a key cannot work.
            raise ValueError(
                "api_key contains ':', which HTTP Basic auth cannot carry (TalentLMS keys have none); "
                "copy the key again from Account & Settings → Basic settings"
            )
        if self.hourly_budget is not None and self.hourly_budget < 1:
            raise ValueError("hourly_budget must be at least 1")
        if self.page_size < 1 or self.concurrency < 1:
            raise ValueError("page_size and concurrency must be at least 1")
        if self.api_v2 not in ("auto", "on", "off"):
            raise ValueError(f"api_v2 must be 'auto', 'on' or 'off', not {self.api_v2!r}")
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", self.api_version):
            raise ValueError(f"api_version must be a date as YYYY-MM-DD, not {self.api_version!r}")

    @property
    def api_root(self) -> str:
        if self.base_url:
            return self.base_url.rstrip("/")
        return f"https://{self.domain}/api"


class _PlanWindow(RateWindow):
    """The hourly plan budget as TalentLMS counts it: a fixed window with a known remainder and reset.

    Seeded from ``/v1/ratelimit`` (limit, remaining, reset), so calls other integrations already spent
    this hour are not ours to spend again; each later window starts full.

    A spent window is taken as over `RATE_MARGIN_S` after its reset: TalentLMS starts its next window
    at the first call it receives, a little after we sent it, so its window ends a little after ours.
    """

    def __init__(self, limit: int, *, period: float = HOUR_S) -> None:
        super().__init__(limit, period, name=f"{limit}/hour", margin=RATE_MARGIN_S)
        self.remaining = limit
        self.reset_at = time.monotonic() + period

    def delay(self, now: float) -> float:
        if now >= self.reset_at + RATE_MARGIN_S:
            self.remaining = self.limit
            self.reset_at = now + self.period
        return 0.0 if self.remaining > 0 else self.reset_at + RATE_MARGIN_S - now

    def record(self, now: float) -> None:
        self.remaining -= 1

    def floor_seconds(self, calls: int) -> float:
        if calls <= self.remaining:
            return 0.0
        later = (calls - self.remaining - 1) // self.limit
        return max(0.0, self.reset_at - time.monotonic()) + later * self.period


_UPSERT_NOTE: Final = (
    "The course's `code` holds `origin_id`, so an upsert first lists the courses (one call) and finds "
    "the course it made before: a repeated or retried upsert never creates a second course. "
    "`duration` (minutes) is sent as `time_limit` in whole days, rounded up (1 → 1 day, 1441 → 2 days), "
    "at most 3,650 days (5,256,000 minutes; longer is InvalidInput before any call). "
    "TalentLMS API v1 has no course-edit call: an existing course whose title, description or "
    "duration differ is reported per item as `failed` with the code LMS.COURSE_UPDATE_NOT_SUPPORTED "
    "(never claimed as updated); one that already matches is `unchanged`. If a create call fails "
    "without an answer, the connector lists the courses again and reports `created` when the course "
    "is there."
)
_DEACTIVATE_NOTE: Final = (
    "TalentLMS cannot deactivate or archive a course: this permanently DELETES the course and every "
    "enrolment and progress in it (POST /v1/deletecourse). Irreversible. Connect with "
    "allow_destructive=False to get DestructiveActionRefused instead."
)
_ENROLL_NOTE: Final = (
    "TalentLMS picks the role from the user's account type: SuperAdmin, admin and trainer (instructor) "
    "types are enrolled as trainers, with no progression. When that happens the connector un-enrolls "
    "the user again (rollback) and raises ActionFailed with the item code LMS.ENROLLED_AS_TRAINER; if "
    "the rollback fails, the code is LMS.ROLLBACK_FAILED and the message says the user is still "
    "enrolled as a trainer. A user already enrolled as a learner is `unchanged`."
)


CAPABILITIES: Final = Capabilities.build(
    slug=SLUG,
    name="TalentLMS",
    models={
        "users": model_support(
            "first_name",
            "last_name",
            "work_email",
            "status",
            "remote_created_at",
            "username",
            "remote_role",
            "remote_updated_at",
            "custom_fields",
            notes={
                "status": "TalentLMS `status` active/inactive",
                "remote_created_at": "`created_on` (no timestamp sibling; read in utc_offset_minutes)",
                "remote_data": "the `/v1/users` list entry",
                "username": "`login`",
                "remote_role": "`user_type`, the account type's name as TalentLMS sends it",
                "remote_updated_at": "`last_updated_timestamp` (`last_updated` as fallback)",
                "custom_fields": "the `custom_field_N` entries of the user with a value (empty ones left "
                "out), keyed `custom_field_1`...; with custom_field_names=True keyed by the fields' names "
                "(one more call per read: GET /v1/getcustomregistrationfields). Checkboxes are 'on'/'off'",
            },
            partial={
                "role": "from `user_type` for TalentLMS's default account types only: SuperAdmin and "
                "Admin-Type → ADMIN, Trainer-Type → INSTRUCTOR, Learner-Type (and Learner) → LEARNER. "
                "Custom account types (and Learner-Instructor) are UNKNOWN: their names say nothing "
                "reliable about the role; the name is in remote_role",
                "locale": "`language` as TalentLMS sends it: the language's name (e.g. 'English'), not a "
                "language tag",
                "timezone": "`timezone` as TalentLMS sends it, e.g. '(GMT +02:00) Athens, Istanbul, Minsk' "
                "(the reference's time-zone mappings): not an IANA name, and not mapped to one, since one "
                "label covers places with different daylight-saving rules",
            },
            unsupported={
                "job_title": "TalentLMS users have no job title (a domain may keep one in a custom "
                "field: see custom_fields)",
            },
        ),
        "courses": model_support(
            "remote_created_at",
            "origin_id",
            notes={
                "origin_id": "the course `code` (where upsert_courses keeps origin_id); empty code → None",
                "remote_created_at": "`creation_date` (no timestamp sibling; read in utc_offset_minutes)",
            },
        ),
        "course_revisions": model_support(
            "course_id",
            "title",
            "description",
            "status",
            "remote_created_at",
            "code",
            "thumbnail_url",
            "remote_updated_at",
            note="TalentLMS has no course versions: one revision per course, sharing the course's remote id.",
            notes={
                "status": "course `status` active/inactive",
                "title": "course `name`",
                "code": "course `code` (empty → None)",
                "thumbnail_url": "`big_avatar` (`avatar` as fallback); a course without an image has "
                "TalentLMS's placeholder image there, as TalentLMS sends it",
                "remote_updated_at": "`last_update_on` (no timestamp sibling; read in utc_offset_minutes)",
            },
            partial={
                "duration": "`time_limit` (whole days) × 1,440: the days a learner has to complete the "
                "course after enrolling — where upsert_courses writes `duration` — not the length of its "
                "content; 0 (no limit) → None",
                "categories": "only with category_names=True (one more call per read: GET "
                "/v1/categories): the course's category and its parents' names, outermost first; "
                "otherwise None",
            },
            unsupported={
                "languages": "TalentLMS v1 course entries carry no language (only branches and users do)",
            },
        ),
        "course_progressions": model_support(
            "user_id",
            "course_revision_id",
            "status",
            "completed_at",
            "enrolled_at",
            "progress",
            "time_spent",
            note="Read from each course's detail (GET /v1/courses/id:N lists every enrolled user with "
            "completion data): one call per course, not one per user × course pair. Trainers "
            "(instructors) have no progression in TalentLMS and produce none. remote_id is "
            "`<user id>:<course id>`.",
            notes={
                "status": "COMPLETED when completed_on is set; DROPPED when the enrolment expired "
                "before completion; IN_PROGRESS when completion_percentage > 0; else ENROLLED",
                "completed_at": "completed_on_timestamp (completed_on as fallback)",
                "enrolled_at": "enrolled_on_timestamp (enrolled_on as fallback)",
                "progress": "`completion_percentage` (0-100; outside that range the read fails with "
                "InvalidRemoteResponse)",
                "time_spent": "seconds: `total_time_seconds` (`total_time`, e.g. '1h 5m 3s', as "
                "fallback); a negative time fails the read with InvalidRemoteResponse",
            },
            unsupported={
                "score": "the course detail has no course score; v1 gives per-unit scores only per "
                "user × course (GET /v1/getuserstatusincourse: one call per enrolment instead of one per "
                "course), and no course score at all",
                "started_at": "v1 gives when a learner was enrolled, not when they started",
                "last_activity_at": "v1 gives no activity time for an enrolment (only the URL of the "
                "last unit accessed, in the user detail)",
                "due_at": "v1 gives no due date; `expired_on` is when an enrolment expired (read as "
                "DROPPED)",
                "remote_updated_at": "v1 gives no modification time for an enrolment",
            },
        ),
        "course_items": model_support(
            "course_revision_id",
            "parent_id",
            "type",
            "remote_type",
            "title",
            "position",
            by_default=False,
            note="The course detail's `units` (GET /v1/courses/id:N). Read on request only (sync with "
            "models=[..., 'course_items']): it costs the course list plus one call per course (201 "
            "calls for 200 courses), which a default sync does not make for it. TalentLMS lists units "
            "flat: a `Section` unit heads the units after it, up to the next Section. remote_id is "
            "`<course id>:<unit id>`.",
            notes={
                "parent_id": "the `Section` unit the item follows; None for sections and the units "
                "before the first section",
                "type": "from `type`: Section → SECTION, Content/Unit → CONTENT, Web content/iFrame → "
                "LINK, Video, Audio, Presentation | Document → DOCUMENT, SCORM | xAPI | cmi5 → SCORM, "
                "Test → ASSESSMENT, Survey, Assignment, ILT/Instructor-led training → LIVE_SESSION; "
                "any other type → UNKNOWN",
                "remote_type": "`type` as TalentLMS sends it",
                "title": "`name`",
                "position": "0-based, in TalentLMS's order, within the section (or the course, at the "
                "top)",
            },
            unsupported={
                "duration": "v1 units carry no length (a Section's `delay_time` is how long it stays "
                "locked, not its length)",
                "is_required": "v1 units carry no completion flag (the course's `rules` are free text, "
                "e.g. 'You must complete all content')",
            },
        ),
    },
    actions={
        "upsert_courses": action_support(
            "items.origin_id",
            "items.course.type",
            "items.course.title",
            "items.course.description",
            "items.course.duration",
            note=_UPSERT_NOTE,
            notes={
                "items.origin_id": "stored in the course `code`",
                "items.course.type": "EXTERNAL only",
                "items.course.title": "course `name`",
                "items.course.duration": "minutes → whole days (`time_limit`), rounded up; at most 3,650 "
                "days",
            },
        ),
        "deactivate_course": action_support("course_id", flags={"destructive"}, note=_DEACTIVATE_NOTE),
        "enroll_user": action_support("user_id", "course_revision_id", flags={"rollback"}, note=_ENROLL_NOTE),
    },
    features={
        "passthrough": "raw v1 calls (e.g. GET /v1/siteinfo) with the connection's Basic auth and "
        "rate budgets; write path-style parameters yourself. Paths under /v2/ are sent with API v2's "
        "headers (X-API-Key, X-API-Version) instead, on the same budgets",
        "scope_testing": "401 → bad API key; 403 → the API is not enabled for the domain (or the domain "
        "is inactive). TalentLMS v1 keys have no scopes: an enabled key may call every endpoint",
        "per_model_tests": "reads the first record of each model",
    },
    unsupported_notes={
        "complete_course": "TalentLMS's API coverage offers no way to mark a course complete "
        "(v1 can only reset progress)",
        "course_providers": "TalentLMS has no course providers",
        "skills": "TalentLMS has no skills",
        "revision_skills": "TalentLMS has no skills",
    },
)


_V2_UPSERT_NOTE: Final = (
    "New courses are created through API v1, the only way to set the duration: `duration` (minutes) is "
    "sent as `time_limit` in whole days, rounded up, at most 3,650 days; `code` holds `origin_id` (one "
    "list call first finds the course made before, so a repeat never creates a second). An existing "
    "course whose title or description differ, or that is inactive, is updated through API v2's batch "
    "upsert (POST /v2/batch/courses, by id, at most 100 per call, `is_active` true: an upsert "
    "reactivates a deactivated course). TalentLMS applies it in a background task, so the item is "
    "`accepted`; wait_until_visible polls the task and reads the courses back: `updated` once the "
    "course shows the change, `failed` with LMS.COURSE_BATCH_FAILED when the task failed it. The batch "
    "has no duration field: a duration change on an existing course is not applied and says so on the "
    "item with the code LMS.COURSE_UPDATE_NOT_SUPPORTED (`failed` when it is the only change). A course "
    "that already matches is `unchanged`."
)
_V2_DEACTIVATE_NOTE: Final = (
    "Sets the course inactive through API v2's batch upsert (`is_active`: false): reversible, and every "
    "enrolment and progress in it is kept. TalentLMS applies it in a background task, so the result is "
    "`accepted`, then `updated` after wait_until_visible once the course reads back inactive. An upsert "
    "of the same origin_id makes it active again. Already inactive: `unchanged`."
)
_MODES_NOTE: Final = (
    "What a connection can do depends on whether the API key can use TalentLMS API v2 (the connector "
    "option api_v2: auto probes once per connection, on, off). Mode `v2`: upsert_courses updates a "
    "course's title and description and deactivate_course is reversible (both asynchronous). Mode `v1` "
    "(v2 answers 401/403/404, or api_v2=off): no course updates, and deactivate_course permanently "
    "deletes the course (destructive). The flags below are those of either mode; a connection's "
    "`lms.capabilities` (after `await lms.resolve_capabilities()`) is its mode's table."
)
V1_CAPABILITIES: Final = CAPABILITIES.variant(
    mode="v1",
    note="API v1 only (api_v2=off, or v2 answered 401/403/404): no course updates; deactivate deletes.",
)
V2_CAPABILITIES: Final = CAPABILITIES.variant(
    mode="v2",
    note="API v2 available: course updates and reversible deactivation through its batch upsert.",
    actions={
        "upsert_courses": attrs.evolve(
            CAPABILITIES.actions["upsert_courses"], flags=frozenset({ActionFlag.ASYNCHRONOUS}),
            note=_V2_UPSERT_NOTE,
        ),
        "deactivate_course": action_support(
            "course_id", flags={"asynchronous"}, note=_V2_DEACTIVATE_NOTE
        ),
    },
)
#: The class's table: every mode's flags (so a closed connection refuses what either mode might
#: destroy), both notes, and the two modes' own tables.
TABLE: Final = CAPABILITIES.variant(
    note=_MODES_NOTE,
    actions={
        "upsert_courses": attrs.evolve(
            CAPABILITIES.actions["upsert_courses"],
            flags=frozenset({ActionFlag.ASYNCHRONOUS}),
            note=f"With API v2 (mode v2): {_V2_UPSERT_NOTE} With API v1 only (mode v1): {_UPSERT_NOTE}",
        ),
        "deactivate_course": action_support(
            "course_id",
            flags={"asynchronous", "destructive"},
            note=f"With API v2 (mode v2): {_V2_DEACTIVATE_NOTE} With API v1 only (mode v1): "
            f"{_DEACTIVATE_NOTE}",
        ),
    },
    modes={"v2": V2_CAPABILITIES, "v1": V1_CAPABILITIES},
)


@attrs.frozen(kw_only=True)
class _Pending:
    """An item sent to a v2 batch task, and how the course must read back once it is applied."""

    task_id: str
    remote_id: str
    name: str | None
    description: str | None
    status: str


class TalentLMSConnector(Connector[TalentLMSConfig]):
    """TalentLMS through API v1, and API v2 for course edits where the key has it.

    >>> async with lmsconnect.connect("talentlms", domain="acme.talentlms.com", api_key=key) as lms:
    ...     async for progression in lms.list(lmsconnect.CourseProgression):
    ...         print(progression.user_id, progression.status)
    """

    spec = ConnectorSpec(
        slug=SLUG,
        name="TalentLMS",
        config=TalentLMSConfig,
        api_versions=("v1", "v2"),
        simulator="lmsconnect_talentlms.testing:TalentLMSSimulator",
        docs_url="https://www.talentlms.com/pages/docs/TalentLMS-API-Documentation.pdf",
    )
    capabilities = TABLE
    # Longer upsert durations are InvalidInput before any call (the core checks it).
    max_duration_minutes = MAX_DURATION_MINUTES

    #: The hourly limit /v1/ratelimit reported when the connection opened (None if it could not be read).
    plan_limit: int | None = None
    #: Length of TalentLMS's plan window (an hour); tests against a fast simulator shorten it.
    plan_window_s: ClassVar[float] = HOUR_S
    _plan_window: _PlanWindow
    _calibrated: bool
    _calibration_lock: asyncio.Lock
    _v2: V2Client
    #: "v2" or "v1" once known (api_v2=on/off: at open; auto: after the probe), else None.
    _mode: str | None
    #: Why this connection has no v2 (shown by check()), or how it found that it has.
    _mode_reason: str
    _mode_lock: asyncio.Lock
    #: Items sent to v2 batch tasks and not yet seen applied, by (action, item key).
    _pending: dict[tuple[str, str], _Pending]

    # -- transport ---------------------------------------------------------------------------------

    def create_http(self) -> HttpClient:
        key = self.config.api_key.reveal()
        token = base64.b64encode(f"{key}:".encode()).decode("ascii")
        header = f"Basic {token}"

        async def auth(headers: dict[str, str]) -> None:
            headers["Authorization"] = header

        # Reads and writes share TalentLMS's budgets: one 200-per-5-s window and the plan's hour.
        # A small margin absorbs the gap between our send time and TalentLMS's count.
        self._plan_window = _PlanWindow(
            self.config.hourly_budget or DEFAULT_HOURLY_BUDGET, period=self.plan_window_s
        )
        budget = RateBudget(
            RateWindow(BURST_LIMIT, BURST_PERIOD_S, name="200/5s", margin=RATE_MARGIN_S),
            self._plan_window,
        )
        return HttpClient(
            slug=SLUG,
            base_url=self.config.api_root,
            read_budget=budget,
            write_budget=budget,
            auth=auth,
            error_mapper=self._map_error,
            secrets=(key, token),
            options=self.http_options,
            headers={"Accept": "application/json"},
            # v2 task ids may look like words: named by template in telemetry, never by id.
            routes=V2_ROUTES,
        )

    async def on_open(self) -> None:
        self._calibrated = False
        self._calibration_lock = asyncio.Lock()
        self._converter = make_wire_converter(utc_offset=self._offset)
        self._v2 = V2Client(
            self.http,
            api_key=self.config.api_key.reveal(),
            api_version=self.config.api_version,
            error_for=_error_for,
            before_call=self._ensure_calibrated,
            write_attempts=WRITE_429_ATTEMPTS,
        )
        self._course_list: asyncio.Future[list[tuple[CourseRow, dict[str, Any]]] | None] | None = None
        self._mode_lock = asyncio.Lock()
        self._pending = {}
        self._mode, self._mode_reason = None, ""
        self.capabilities = TABLE
        if self.config.api_v2 != "auto":
            # Said, not probed: no call is spent on it.
            self._set_mode("v2" if self.config.api_v2 == "on" else "v1", f"api_v2={self.config.api_v2}")

    def _wire(self, raw: Any, cls: type[_T], where: str) -> _T:
        """`raw` as the wire record `cls`, or InvalidRemoteResponse naming `where` and the field."""
        return structure_wire(self._converter, raw, cls, where=where, connector=SLUG, scrub=self.http.scrub)

    async def _ensure_calibrated(self) -> None:
        # Lazily, at the first real call: opening a connection costs no request, and a connection
        # that is refused a destructive action before it does anything makes no call at all.
        if self._calibrated:
            return
        async with self._calibration_lock:
            if not self._calibrated:
                await self._calibrate()
                self._calibrated = True

    async def handle_passthrough(self, method: str, path: str, **kwargs: Any) -> Response:
        if V2Client.is_v2_path(path):
            return await self._v2.send(method, path, **kwargs)
        await self._ensure_calibrated()
        return await self.http.request(method, path, **kwargs)

    # -- which API this connection uses ------------------------------------------------------------

    def _set_mode(self, mode: str, reason: str) -> None:
        self._mode, self._mode_reason = mode, reason
        self.capabilities = V2_CAPABILITIES if mode == "v2" else V1_CAPABILITIES

    async def resolve_capabilities(self) -> Capabilities:
        """With api_v2=auto, probe once (GET /v2/health, then one authenticated v2 read): v2 if both
        answer, v1 only if either says 401/403/404. Any other failure raises and is probed again next
        time: a connection never falls back to v1's destructive deactivate on a passing outage."""
        if self._mode is None:
            async with self._mode_lock:
                if self._mode is None:
                    unavailable = await self._v2.probe()
                    if unavailable is None:
                        self._set_mode("v2", "GET /v2/health and an authenticated v2 read answered")
                    else:
                        self._set_mode("v1", unavailable)
        return self.capabilities

    @property
    def _uses_v2(self) -> bool:
        return self._mode == "v2"

    async def _calibrate(self) -> None:
        """Size the hourly budget from /v1/ratelimit (free: it does not count against the limit)."""
        try:
            response = await self.http.request("GET", build_path("ratelimit"), raise_for_status=False)
        except LMSConnectError:
            return
        if response.status != 200:
            # Credentials problems surface at the first real call or in check(), with their mapping.
            return
        try:
            body = response.json()
        except InvalidRemoteResponse:
            return
        try:
            row = self._wire(body, RateLimitRow, "GET /v1/ratelimit")
        except InvalidRemoteResponse:
            return  # best effort: the default budget stands
        limit, remaining, reset = row.limit, row.remaining, row.reset
        if limit is None or limit < 1 or (remaining is not None and remaining < 0):
            return  # not a budget: a negative remainder would hold every call for the hour
        self.plan_limit = limit
        budget = min(limit, self.config.hourly_budget or limit)
        # The window is an hour: a reset further away than that (and a minute of clock skew and
        # rounding to whole seconds) is not believed.
        reset_in = self.plan_window_s
        if reset is not None:
            reset_in = min(max(0.0, reset - time.time()), self.plan_window_s + 60.0)
        window = self._plan_window
        window.limit = budget
        window.name = f"{budget}/hour"
        window.remaining = budget if remaining is None else max(0, min(budget, remaining))
        window.reset_at = time.monotonic() + reset_in

    def _map_error(self, response: Response) -> LMSConnectError | None:
        try:
            body = response.json()
        except InvalidRemoteResponse:
            body = None
        kind, message = error_of(body)
        return _error_for(
            response.status,
            kind,
            message,
            where=f"{response.method} {response.url}",
            headers=response.headers,
        )

    async def _get(self, action: str, params: Mapping[str, Any] | None = None) -> Any:
        await self._ensure_calibrated()
        response = await self.http.request("GET", build_path(action, params))
        return self._body(response)

    async def _post(self, action: str, form: Mapping[str, Any]) -> Any:
        await self._ensure_calibrated()
        data = {k: str(v) for k, v in form.items()}
        for attempt in range(1, WRITE_429_ATTEMPTS + 1):
            try:
                response = await self.http.request("POST", build_path(action), data=data)
            except RateLimited:
                # A 429 is a refusal, not a half-applied write: unlike a 5xx or a lost answer, it is
                # safe to send again. The transport already paused the budget until the reset.
                if attempt == WRITE_429_ATTEMPTS:
                    raise
                continue
            return self._body(response)
        raise AssertionError("unreachable")  # pragma: no cover

    def _body(self, response: Response) -> Any:
        body = response.json()
        kind, message = error_of(body)
        if message is not None:
            # TalentLMS has been seen to send error bodies with a 2xx status; an error is an error.
            raise self.http.raise_mapped(
                _error_for(400, kind, message, where=f"{response.method} {response.url}")
            )
        return body

    # -- reads -------------------------------------------------------------------------------------

    @property
    def _offset(self) -> dt.timedelta:
        return dt.timedelta(minutes=self.config.utc_offset_minutes)

    async def read_users(self) -> AsyncIterator[User]:
        page_size = self.config.page_size
        names = await self._custom_field_names() if self.config.custom_field_names else {}
        seen: set[str] = set()
        page = 1
        while True:
            params = {"page_size": page_size, "page_number": page}
            where = f"GET {build_path('users', params)}"
            rows = _list_of(await self._get("users", params), where)
            new = 0
            for index, raw in enumerate(rows):
                user = self._user(self._wire(raw, UserRow, f"{where} [{index}]"), raw, names)
                # Pages are positional: a user created while we page shifts the rest by one.
                if user.remote_id not in seen:
                    seen.add(user.remote_id)
                    new += 1
                    yield user
            if len(rows) < page_size:
                return
            if page == 1 and total_wanted("users"):
                await self._announce_user_total()
            if not new:
                # A full page of users we already have: the server repeats itself (page_number
                # ignored) and asking for the next page would never end.
                raise InvalidRemoteResponse(
                    f"{where} answered a full page of users all seen on earlier pages: the pages do not "
                    "advance, so the list cannot be read to its end",
                    connector=SLUG,
                )
            page += 1

    async def _announce_user_total(self) -> None:
        """For a sync showing progress, when the users take more than one page: how many there are, from
        ``GET /v1/siteinfo`` (``total_users``; one call, counted in the plan's budget like any other).
        The total only feeds the progress display, so an answer without a count leaves it unknown."""
        try:
            info = await self._get("siteinfo")
        except (NotFound, PermissionDenied, RemoteError, InvalidRemoteResponse):
            return
        total = info.get("total_users") if isinstance(info, dict) else None
        if isinstance(total, str) and total.isascii() and total.isdigit() and len(total) <= 9:
            announce_total("users", int(total))

    async def _custom_field_names(self) -> dict[str, str]:
        """Custom user field key → name (``custom_field_1`` → ``Department``), from one call.

        A name two fields share is left out (their values stay under their keys), as is a nameless field.
        """
        where = "GET /v1/getcustomregistrationfields"
        rows = [
            self._wire(raw, CustomFieldRow, f"{where} [{index}]")
            for index, raw in enumerate(_list_of(await self._get("getcustomregistrationfields"), where))
        ]
        named = [(row.key, row.name) for row in rows if row.key and row.name]
        counts = collections.Counter(name for _, name in named)
        return {key: name for key, name in named if counts[name] == 1}

    def _user(self, row: UserRow, raw: dict[str, Any], names: Mapping[str, str]) -> User:
        fields = row.custom_fields
        if fields is not None and names:
            fields = {names.get(key, key): value for key, value in fields.items()}
        user_type = row.user_type
        return User(
            id=self.make_id("users", row.id),
            remote_id=row.id,
            first_name=row.first_name,
            last_name=row.last_name,
            work_email=row.email,
            status=None if row.status is None else UserStatus(row.status.upper()),
            remote_created_at=row.created_on,
            username=row.login,
            role=None if user_type is None else _USER_ROLES.get(user_type.lower(), UserRole.UNKNOWN),
            remote_role=user_type,
            locale=row.language,
            timezone=row.timezone,
            remote_updated_at=row.updated_at,
            custom_fields=fields,
            remote_data={"/v1/users": raw},
        )

    async def _course_rows(self) -> list[tuple[CourseRow, dict[str, Any]]]:
        """Every course of ``GET /v1/courses`` (once each), with its raw entry.

        Callers that ask while a list call is in flight share its answer: courses, revisions and
        progressions read together cost one list call, not three. A call after it has answered lists
        again.
        """
        shared = self._course_list
        if shared is not None:
            # Shielded: this reader given up does not cancel the answer the others wait for.
            rows = await asyncio.shield(shared)
            if rows is not None:
                return rows
            # The reader that was listing gave up (its stream closed or cancelled): list here instead.
        # No task of its own: the reader that lists does the call, so nothing runs on after the
        # connection (or the stream that wanted it) has closed.
        shared = self._course_list = asyncio.get_running_loop().create_future()
        try:
            rows = await self._list_course_rows()
        except Exception as exc:
            shared.set_exception(exc)
            shared.exception()  # raised to every waiter; marked seen for when there is none
            raise
        except BaseException:
            shared.set_result(None)
            raise
        finally:
            if self._course_list is shared:
                self._course_list = None
        shared.set_result(rows)
        return rows

    async def _list_course_rows(self) -> list[tuple[CourseRow, dict[str, Any]]]:
        where = "GET /v1/courses"
        rows: dict[str, tuple[CourseRow, dict[str, Any]]] = {}
        for index, raw in enumerate(_list_of(await self._get("courses"), where)):
            row = self._wire(raw, CourseRow, f"{where} [{index}]")
            rows.setdefault(row.id, (row, raw))
        return list(rows.values())

    async def read_courses(self) -> AsyncIterator[Course]:
        rows = await self._course_rows()
        announce_total("courses", len(rows))  # one call lists every course
        for row, raw in rows:
            yield Course(
                id=self.make_id("courses", row.id),
                remote_id=row.id,
                origin_id=row.code,
                remote_created_at=row.creation_date,
                remote_data={"/v1/courses": raw},
            )

    async def _category_paths(self) -> dict[int, tuple[str, ...]]:
        """Category id → its name and its parents' names, outermost first, from one call."""
        where = "GET /v1/categories"
        rows: dict[int, CategoryRow] = {}
        for index, raw in enumerate(_list_of(await self._get("categories"), where)):
            row = self._wire(raw, CategoryRow, f"{where} [{index}]")
            rows.setdefault(int(row.id), row)
        paths: dict[int, tuple[str, ...]] = {}
        for category_id, row in rows.items():
            names: list[str] = []
            seen: set[int] = set()
            current: CategoryRow | None = row
            # A parent missing from the list ends the path; a cycle (a broken answer) ends it too.
            while current is not None and int(current.id) not in seen:
                seen.add(int(current.id))
                if current.name:
                    names.append(current.name)
                parent = current.parent_category_id
                current = None if parent is None else rows.get(parent)
            paths[category_id] = tuple(reversed(names))
        return paths

    async def read_course_revisions(self) -> AsyncIterator[CourseRevision]:
        course_rows = await self._course_rows()
        announce_total("course_revisions", len(course_rows))
        paths = await self._category_paths() if self.config.category_names else None
        for course, raw in course_rows:
            row = self._wire(raw, CourseRevisionRow, f"GET /v1/courses (course {course.id})")
            categories = None
            if paths is not None and row.category_id is not None:
                categories = paths.get(row.category_id) or None
            yield CourseRevision(
                id=self.make_id("course_revisions", row.id),
                remote_id=row.id,
                course_id=self.make_id("courses", row.id),
                title=row.name,
                description=row.description,
                status=None if row.status is None else RevisionStatus(row.status.upper()),
                remote_created_at=row.creation_date,
                code=row.code,
                duration=minutes_from_days(row.time_limit),
                categories=categories,
                thumbnail_url=row.big_avatar or row.avatar,
                remote_updated_at=row.last_update_on,
                remote_data={"/v1/courses": raw},
            )

    async def _course_details(
        self, model: str
    ) -> AsyncGenerator[tuple[str, str, dict[str, Any]], None]:
        """(course id, its detail path, the detail) of every course: one call each, concurrently. The
        progress display of `model` counts them as pages (what each lists is known only once read)."""
        course_ids = [row.id for row, _ in await self._course_rows()]
        announce_pages(model, 0, len(course_ids))
        # stream_map is an async generator, typed as the iterator it promises.
        details = cast(
            "AsyncGenerator[tuple[str, dict[str, Any] | None], None]",
            stream_map(course_ids, self._course_detail, concurrency=self.config.concurrency),
        )
        # Closed at once when a detail does not fit, so the calls still in flight are cancelled and
        # their outcome collected, not left to the garbage collector.
        done = 0
        async with contextlib.aclosing(details):
            async for course_id, detail in details:
                done += 1
                announce_pages(model, done, len(course_ids))
                if detail is not None:  # None: deleted between the list and the detail call
                    yield course_id, f"/v1/courses/id:{course_id}", detail

    async def read_course_progressions(self) -> AsyncIterator[CourseProgression]:
        async with contextlib.aclosing(self._course_details("course_progressions")) as details:
            async for course_id, path, detail in details:
                rows = self._wire(detail, CourseDetail, f"GET {path}").users
                seen: set[str] = set()
                for row, raw in zip(rows, detail["users"], strict=True):
                    if row.id in seen:
                        continue
                    seen.add(row.id)
                    progression = self._progression(course_id, row, raw, path)
                    if progression is not None:
                        yield progression

    async def read_course_items(self) -> AsyncIterator[CourseItem]:
        async with contextlib.aclosing(self._course_details("course_items")) as details:
            async for course_id, path, detail in details:
                units = self._wire(detail, CourseUnits, f"GET {path}").units
                for item in self._course_items(course_id, units, detail["units"], path):
                    yield item

    def _course_items(
        self, course_id: str, rows: Sequence[UnitRow], raws: Sequence[Any], path: str
    ) -> list[CourseItem]:
        """The units of one course as items: a Section unit is the parent of the units after it."""
        items: list[CourseItem] = []
        positions: collections.Counter[str | None] = collections.Counter()
        section: str | None = None
        seen: set[str] = set()
        for row, raw in zip(rows, raws, strict=True):
            if row.id in seen:
                continue
            seen.add(row.id)
            kind = _unit_type(row.type)
            remote_id = f"{course_id}:{row.id}"
            item_id = self.make_id("course_items", remote_id)
            parent = None if kind is CourseItemType.SECTION else section
            items.append(
                CourseItem(
                    id=item_id,
                    remote_id=remote_id,
                    course_revision_id=self.make_id("course_revisions", course_id),
                    parent_id=parent,
                    type=kind,
                    remote_type=row.type,
                    title=row.name,
                    position=positions[parent],
                    remote_data={path: raw},
                )
            )
            positions[parent] += 1
            if kind is CourseItemType.SECTION:
                section = item_id
        return items

    async def _course_detail(self, course_id: str) -> tuple[str, dict[str, Any] | None]:
        try:
            detail = await self._get("courses", {"id": course_id})
        except NotFound:
            return course_id, None
        if not isinstance(detail, dict):
            raise InvalidRemoteResponse(
                f"GET /v1/courses/id:{course_id} returned {type(detail).__name__}, expected an object",
                connector=SLUG,
            )
        return course_id, detail

    def _progression(
        self, course_id: str, row: EnrolledUser, raw: dict[str, Any], path: str
    ) -> CourseProgression | None:
        if row.role == _INSTRUCTOR:
            return None
        remote_id = f"{row.id}:{course_id}"
        if row.completed_at is not None:
            status = ProgressionStatus.COMPLETED
        elif row.expired_at is not None:
            status = ProgressionStatus.DROPPED
        elif (row.completion_percentage or 0) > 0:
            status = ProgressionStatus.IN_PROGRESS
        else:
            status = ProgressionStatus.ENROLLED
        return CourseProgression(
            id=self.make_id("course_progressions", remote_id),
            remote_id=remote_id,
            user_id=self.make_id("users", row.id),
            course_revision_id=self.make_id("course_revisions", course_id),
            status=status,
            enrolled_at=row.enrolled_at,
            completed_at=row.completed_at,
            progress=None if row.completion_percentage is None else float(row.completion_percentage),
            time_spent=row.time_spent,
            remote_data={path: raw},
        )

    # -- actions -----------------------------------------------------------------------------------

    async def handle_upsert_courses(self, action: UpsertCourses) -> ActionResult:
        by_code = await self._courses_by_code()
        if self._uses_v2:
            return await self._upsert_v2(action, by_code)
        results = []
        for item in action.items:
            results.append(await self._upsert_one(item.origin_id, item.course, by_code))
        return ActionResult(action="upsert_courses", items=tuple(results))

    async def _courses_by_code(self) -> dict[str, CourseRow]:
        by_code: dict[str, CourseRow] = {}
        for row, _ in await self._course_rows():
            # With duplicates (made by hand in TalentLMS), the oldest course is the one we track.
            if row.code is not None and row.code not in by_code:
                by_code[row.code] = row
        return by_code

    async def _upsert_one(self, origin_id: str, course: Any, by_code: dict[str, CourseRow]) -> ItemResult:
        wanted: dict[str, str] = {"name": course.title, "description": course.description or ""}
        if course.duration is not None:
            wanted["time_limit"] = str(days_from_minutes(course.duration))
        existing = by_code.get(origin_id)
        if existing is not None:
            return self._compare(origin_id, existing, wanted)
        form = {**wanted, "code": origin_id}
        try:
            created = await self._post("createcourse", form)
        except (RemoteError, RateLimited) as exc:
            # The create may have been applied before the failure; look before reporting.
            try:
                again = await self._courses_by_code()
            except LMSConnectError:
                again = {}
            if origin_id in again:
                by_code[origin_id] = again[origin_id]
                return self._item_created(
                    origin_id,
                    again[origin_id],
                    detail="created (confirmed by listing after the create call failed)",
                )
            return _failed(origin_id, exc.code, f"the course was not created: {exc}")
        except InvalidInput as exc:
            return _failed(origin_id, exc.code, f"TalentLMS refused the course: {exc}")
        try:
            made = self._wire(created, CreatedCourse, "POST /v1/createcourse")
        except InvalidRemoteResponse as exc:
            # The course may well exist: say so rather than claim it failed.
            return _failed(
                origin_id,
                exc.code,
                f"TalentLMS answered the create call with something that is not a course, so whether "
                f"the course was created is unknown; upsert again to find out ({exc})",
            )
        by_code[origin_id] = CourseRow(id=made.id, code=Code(origin_id), time_limit=made.time_limit)
        return self._item_created(origin_id, made)

    def _item_created(
        self, origin_id: str, row: CourseRow | CreatedCourse, *, detail: str = ""
    ) -> ItemResult:
        days = row.time_limit
        return ItemResult(
            key=origin_id,
            status=ItemStatus.CREATED,
            id=self.make_id("courses", row.id),
            remote_id=row.id,
            detail=detail or (f"time_limit {days} day(s)" if days else ""),
        )

    @staticmethod
    def _differences(row: CourseRow, wanted: Mapping[str, str]) -> list[str]:
        """The keys of `wanted` (name, description, time_limit) the course does not already have."""
        current = {
            "name": row.name or "",
            "description": row.description or "",
            "time_limit": str(row.time_limit or 0),
        }
        return [k for k, v in wanted.items() if (v.strip() if k != "time_limit" else v) != current[k]]

    def _compare(self, origin_id: str, row: CourseRow, wanted: Mapping[str, str]) -> ItemResult:
        remote_id = row.id
        differs = self._differences(row, wanted)
        if not differs:
            return ItemResult(
                key=origin_id,
                status=ItemStatus.UNCHANGED,
                id=self.make_id("courses", remote_id),
                remote_id=remote_id,
                detail=f"course {remote_id} (code {origin_id!r}) already matches",
            )
        names = {"name": "title", "description": "description", "time_limit": "duration"}
        return ItemResult(
            key=origin_id,
            status=ItemStatus.FAILED,
            id=self.make_id("courses", remote_id),
            remote_id=remote_id,
            error=ItemError(
                code=COURSE_UPDATE_NOT_SUPPORTED,
                message=(
                    f"course {remote_id} (code {origin_id!r}) exists but its "
                    f"{', '.join(names[k] for k in differs)} differ(s), and TalentLMS API v1 has no "
                    "course-edit call; edit it in TalentLMS, or delete it (deactivate_course) and "
                    "upsert again"
                ),
            ),
        )

    async def handle_deactivate_course(self, action: DeactivateCourse) -> ActionResult:
        course_id = self.remote_id("courses", action.course_id, field="course_id")
        if not is_talent_id(course_id):
            raise InvalidInput(
                f"course_id: TalentLMS course ids are integers, got {course_id!r}", field="course_id"
            )
        if self._uses_v2:
            return await self._deactivate_v2(action.course_id, course_id)
        try:
            await self._post("deletecourse", {"course_id": course_id})
        except RemoteError:
            # Dropped or failed after TalentLMS may have deleted it: the course is gone or it is not.
            if await self._course_exists(course_id):
                raise
        return ActionResult.one(
            "deactivate_course",
            key=action.course_id,
            status=ItemStatus.UPDATED,
            id=self.make_id("courses", course_id),
            remote_id=course_id,
            detail="deleted permanently (TalentLMS cannot deactivate a course)",
        )

    async def _course_exists(self, course_id: str) -> bool:
        try:
            await self._get("courses", {"id": course_id})
        except NotFound:
            return False
        return True

    async def handle_enroll_user(self, action: EnrollUser) -> ActionResult:
        user_id = self.remote_id("users", action.user_id, field="user_id")
        course_id = self.remote_id("course_revisions", action.course_revision_id, field="course_revision_id")
        for name, value in (("user_id", user_id), ("course_revision_id", course_id)):
            if not is_talent_id(value):
                raise InvalidInput(f"{name}: TalentLMS ids are integers, got {value!r}", field=name)
        key = f"{action.user_id}:{action.course_revision_id}"
        progression_remote = f"{user_id}:{course_id}"
        progression_id = self.make_id("course_progressions", progression_remote)
        role: str | None
        try:
            answer = await self._post(
                "addusertocourse", {"user_id": user_id, "course_id": course_id, "role": "learner"}
            )
            try:
                role = self._role_of(answer)
            except InvalidRemoteResponse:
                # The call went through but its answer cannot be read: ask TalentLMS what it did.
                role = await self._role_in_course(user_id, course_id)
        except InvalidInput as exc:
            if "already enrolled" not in (exc.vendor_message or str(exc)).lower():
                raise
            current = await self._role_in_course(user_id, course_id)
            if current == _INSTRUCTOR:
                # Not ours to undo: it existed before this call.
                raise ActionFailed(
                    f"user {user_id} is already enrolled in course {course_id} as a trainer "
                    "(instructor); TalentLMS keeps no progression for trainers",
                    result=_one_failed(
                        "enroll_user",
                        key,
                        ENROLLED_AS_TRAINER,
                        "already enrolled as a trainer; left unchanged",
                    ),
                    connector=SLUG,
                ) from None
            return ActionResult.one(
                "enroll_user",
                key=key,
                status=ItemStatus.UNCHANGED,
                id=progression_id,
                remote_id=progression_remote,
                detail="already enrolled as a learner",
            )
        except RemoteError:
            # No answer: find out whether TalentLMS enrolled the user, and as what.
            role = await self._role_in_course(user_id, course_id)
            if role is None:
                raise
        if role == _INSTRUCTOR:
            await self._roll_back_trainer(user_id, course_id, key)
        return ActionResult.one(
            "enroll_user",
            key=key,
            status=ItemStatus.CREATED,
            id=progression_id,
            remote_id=progression_remote,
            detail=f"enrolled as {role or 'learner'}",
        )

    async def _role_in_course(self, user_id: str, course_id: str) -> str | None:
        try:
            status = await self._get("getuserstatusincourse", {"course_id": course_id, "user_id": user_id})
        except (InvalidInput, NotFound):
            return None
        where = "GET /v1/getuserstatusincourse"
        return self._wire(status, RoleRow, where).role or ""

    def _role_of(self, answer: Any) -> str | None:
        where = "POST /v1/addusertocourse"
        for index, row in enumerate(answer if isinstance(answer, list) else [answer]):
            role = self._wire(row, RoleRow, f"{where} [{index}]").role
            if role:
                return role
        return None

    async def _roll_back_trainer(self, user_id: str, course_id: str, key: str) -> None:
        why = (
            f"TalentLMS enrolled user {user_id} in course {course_id} as a trainer (instructor) because "
            "of the user's account type; trainers have no progression"
        )
        try:
            # A GET that writes; retrying it is safe (a second removal only says "not enrolled").
            await self.http.request(
                "GET",
                build_path("removeuserfromcourse", {"user_id": user_id, "course_id": course_id}),
                idempotent=True,
                write=True,
            )
        except LMSConnectError as exc:
            still = await self._role_in_course_quietly(user_id, course_id)
            if still is not None:
                raise ActionFailed(
                    f"{why}. Rolling back failed ({exc}): the user is STILL ENROLLED AS A TRAINER in "
                    f"course {course_id}; remove them in TalentLMS",
                    result=_one_failed(
                        "enroll_user",
                        key,
                        ROLLBACK_FAILED,
                        "enrolled as a trainer and the rollback failed: still enrolled",
                    ),
                    connector=SLUG,
                ) from exc
        raise ActionFailed(
            f"{why}. The enrolment was rolled back (the user is not enrolled); change the user's "
            "account type to a learner type to enrol them as a learner",
            result=_one_failed(
                "enroll_user", key, ENROLLED_AS_TRAINER, "enrolled as a trainer by TalentLMS; rolled back"
            ),
            connector=SLUG,
        )

    async def _role_in_course_quietly(self, user_id: str, course_id: str) -> str | None:
        try:
            return await self._role_in_course(user_id, course_id)
        except LMSConnectError:
            # Cannot tell: assume the worst so the error does not claim a clean rollback.
            return _INSTRUCTOR

    # -- course edits through API v2 ---------------------------------------------------------------

    async def _upsert_v2(self, action: UpsertCourses, by_code: dict[str, CourseRow]) -> ActionResult:
        """Creates through v1 (as in v1 mode); edits and reactivations through v2 batches of 100."""
        results: dict[int, ItemResult] = {}
        batch: list[tuple[int, str, dict[str, Any], _Pending, ItemError | None]] = []
        for index, item in enumerate(action.items):
            origin_id, course = item.origin_id, item.course
            existing = by_code.get(origin_id)
            if existing is None:
                results[index] = await self._upsert_one(origin_id, course, by_code)
                continue
            wanted: dict[str, str] = {"name": course.title, "description": course.description or ""}
            if course.duration is not None:
                wanted["time_limit"] = str(days_from_minutes(course.duration))
            differs = self._differences(existing, wanted)
            inactive = (existing.status or "").lower() == "inactive"
            edits = [k for k in differs if k != "time_limit"] + (["status"] if inactive else [])
            duration = None
            if "time_limit" in differs:
                duration = ItemError(
                    code=COURSE_UPDATE_NOT_SUPPORTED,
                    message=(
                        f"course {existing.id} (code {origin_id!r}) has time_limit "
                        f"{existing.time_limit or 0} day(s), not the {wanted['time_limit']} asked for: "
                        "not applied, since TalentLMS API v2's batch course update has no duration "
                        "field (change it in TalentLMS)"
                    ),
                )
            if not edits:
                if duration is None:
                    results[index] = self._compare(origin_id, existing, wanted)  # unchanged
                else:
                    results[index] = self._course_item(
                        origin_id, ItemStatus.FAILED, existing.id, error=duration
                    )
                continue
            name, description = course.title.strip(), (course.description or "").strip()
            entry = {
                "id": int(existing.id),
                "code": origin_id,
                "name": name,
                "description": description,
                "is_active": True,
            }
            pending = _Pending(
                task_id="", remote_id=existing.id, name=name, description=description, status="active"
            )
            shown = {"name": "title", "description": "description", "status": "reactivation"}
            batch.append((index, ", ".join(shown[k] for k in edits), entry, pending, duration))
        for start in range(0, len(batch), BATCH_LIMIT):
            chunk = batch[start : start + BATCH_LIMIT]
            try:
                task_id = await self._v2.batch_courses([entry for _, _, entry, _, _ in chunk])
            except LMSConnectError as exc:
                for index, _, _, pending, _ in chunk:
                    results[index] = self._batch_refused(
                        "upsert_courses", action.items[index].origin_id, pending.remote_id, exc
                    )
                continue
            for index, what, _, pending, duration in chunk:
                key = action.items[index].origin_id
                self._remember(("upsert_courses", key), attrs.evolve(pending, task_id=task_id))
                results[index] = self._course_item(
                    key,
                    ItemStatus.ACCEPTED,
                    pending.remote_id,
                    error=duration,
                    detail=f"{what} sent to TalentLMS API v2 (batch task {task_id}); "
                    "wait_until_visible confirms it"
                    + ("; the duration change is NOT applied (see error)" if duration else ""),
                )
        return ActionResult(action="upsert_courses", items=tuple(results[i] for i in sorted(results)))

    def _remember(self, key: tuple[str, str], pending: _Pending) -> None:
        # Results nobody waits for must not grow a long-lived connection without end: the oldest go.
        self._pending.pop(key, None)
        self._pending[key] = pending
        while len(self._pending) > MAX_PENDING:
            del self._pending[next(iter(self._pending))]

    def _batch_refused(self, action: str, key: str, remote_id: str, exc: LMSConnectError) -> ItemResult:
        if isinstance(exc, (InvalidInput, PermissionDenied, NotFound, AuthenticationError)):
            message = f"TalentLMS refused the v2 batch call, nothing was applied: {exc}"
        else:
            message = (
                f"the v2 batch call failed ({exc}); TalentLMS may or may not have applied it: run the "
                f"same {action} again (it reports `unchanged` if it was applied)"
            )
        return self._course_item(
            key, ItemStatus.FAILED, remote_id, error=ItemError(code=exc.code, message=message)
        )

    def _course_item(
        self,
        key: str,
        status: ItemStatus,
        remote_id: str,
        *,
        error: ItemError | None = None,
        detail: str = "",
    ) -> ItemResult:
        return ItemResult(
            key=key,
            status=status,
            id=self.make_id("courses", remote_id),
            remote_id=remote_id,
            error=error,
            detail=detail,
        )

    async def _deactivate_v2(self, key: str, course_id: str) -> ActionResult:
        rows: dict[str, CourseRow] = {row.id: row for row, _ in await self._course_rows()}
        row = rows.get(course_id)
        if row is None:
            raise NotFound(
                f"deactivate_course: TalentLMS has no course {course_id}",
                connector=SLUG,
                vendor_message="The requested course does not exist",
            )
        if (row.status or "").lower() == "inactive":
            item = self._course_item(key, ItemStatus.UNCHANGED, course_id, detail="already inactive")
            return ActionResult(action="deactivate_course", items=(item,))
        # Name, code and description as they are: the batch body lists them and the docs do not say
        # which an update may leave out.
        entry: dict[str, Any] = {
            "id": int(course_id),
            "name": row.name or "",
            "description": row.description or "",
            "is_active": False,
        }
        if row.code:
            entry["code"] = row.code
        try:
            task_id = await self._v2.batch_courses([entry])
        except LMSConnectError as exc:
            refused = self._batch_refused("deactivate_course", key, course_id, exc)
            assert refused.error is not None
            raise ActionFailed(
                refused.error.message,
                result=ActionResult(action="deactivate_course", items=(refused,)),
                connector=SLUG,
            ) from exc
        self._remember(
            ("deactivate_course", key),
            _Pending(task_id=task_id, remote_id=course_id, name=None, description=None, status="inactive"),
        )
        accepted = self._course_item(
            key,
            ItemStatus.ACCEPTED,
            course_id,
            detail=f"is_active=false sent to TalentLMS API v2 (batch task {task_id}); enrolments and "
            "progress are kept; an upsert of the same origin_id reactivates it",
        )
        return ActionResult(action="deactivate_course", items=(accepted,))

    async def wait_until_visible(self, result: ActionResult, *, timeout_s: float = 60.0) -> ActionResult:
        """For `accepted` items of upsert_courses and deactivate_course (API v2 batch tasks): poll the
        tasks until each reports a finished or failed status (an unknown status counts as running) or
        `timeout_s` passes, then read the courses back once: `updated` where the course shows the
        change, `failed` (LMS.COURSE_BATCH_FAILED) where its task ended without it, else still
        `accepted`. Items this connection did not send stay as they are."""
        waiting = {
            (result.action, item.key): self._pending[(result.action, item.key)]
            for item in result.items
            if item.status is ItemStatus.ACCEPTED and (result.action, item.key) in self._pending
        }
        if not waiting:
            return result
        deadline = time.monotonic() + timeout_s
        tasks = await self._wait_for_tasks({p.task_id for p in waiting.values()}, deadline)
        rows: dict[str, CourseRow] = {row.id: row for row, _ in await self._course_rows()}
        items = []
        for item in result.items:
            pending = waiting.get((result.action, item.key))
            if pending is None:
                items.append(item)
                continue
            items.append(self._settled(item, pending, rows.get(pending.remote_id), tasks[pending.task_id]))
            if items[-1].status is not ItemStatus.ACCEPTED:
                del self._pending[(result.action, item.key)]
        return ActionResult(action=result.action, items=tuple(items))

    async def _wait_for_tasks(self, task_ids: set[str], deadline: float) -> dict[str, TaskState]:
        states = {t: TaskState(task_id=t) for t in task_ids}
        delay = 0.2
        while True:
            await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            for task_id, state in states.items():
                if not state.finished:
                    states[task_id] = await self._v2.task(task_id)
            if all(s.finished for s in states.values()) or time.monotonic() >= deadline:
                return states
            delay = min(delay * 2, 5.0)

    def _settled(
        self, item: ItemResult, pending: _Pending, row: CourseRow | None, task: TaskState
    ) -> ItemResult:
        if row is not None and self._shows(row, pending):
            applied = "inactive; enrolments and progress kept" if pending.status == "inactive" else (
                "TalentLMS now shows the new title and description, active"
            )
            return attrs.evolve(item, status=ItemStatus.UPDATED, detail=applied + (
                "; the duration change is NOT applied (see error)" if item.error else ""
            ))
        if not task.finished:
            return item
        said = task.item_errors.get(item.key) or task.item_errors.get(pending.remote_id)
        where = f"TalentLMS API v2 batch task {task.task_id} ended ({task.status or 'no status given'})"
        message = (
            f"{where} and failed this course: {said}" if said
            else f"{where} but course {pending.remote_id} does not show the change"
            if row is not None else f"{where} and course {pending.remote_id} no longer exists"
        )
        return attrs.evolve(
            item, status=ItemStatus.FAILED, error=ItemError(code=COURSE_BATCH_FAILED, message=message)
        )

    @staticmethod
    def _shows(row: CourseRow, pending: _Pending) -> bool:
        if (row.status or "").lower() != pending.status:
            return False
        if pending.name is not None and (row.name or "").strip() != pending.name:
            return False
        return pending.description is None or (row.description or "").strip() == pending.description

    # -- scope testing ------------------------------------------------------------------------------

    async def check_access(self) -> Sequence[CheckItem]:
        try:
            await self._get("ratelimit")
        except PermissionDenied as exc:
            return (
                CheckItem(
                    kind="credentials",
                    name="api_enabled",
                    status=CheckStatus.MISSING_PERMISSION,
                    permissions=("API access (Account & Settings → Basic settings → Enable API)",),
                    detail=str(exc),
                ),
                await self._check_v2(),
            )
        except AuthenticationError:
            raise
        items = [
            CheckItem(
                kind="credentials",
                name="credentials",
                status=CheckStatus.OK,
                detail="API key accepted; the API is enabled for the domain",
            ),
        ]
        items.append(await self._check_v2())
        for name, cap in self.capabilities.actions.items():
            if cap.supported:
                items.append(
                    CheckItem(
                        kind="action",
                        name=name,
                        status=CheckStatus.OK,
                        detail="TalentLMS v1 keys have no scopes; an enabled key may call every endpoint",
                    )
                )
        return items


    async def _check_v2(self) -> CheckItem:
        """Whether this connection uses API v2; with api_v2=on, whether v2 really answers the key."""
        reason = self._mode_reason
        if self.config.api_v2 == "on":
            unavailable = await self._v2.probe()
            if unavailable is not None:
                return CheckItem(
                    kind="credentials",
                    name="api_v2",
                    status=CheckStatus.MISSING_PERMISSION,
                    permissions=("TalentLMS API v2 for this key",),
                    detail=f"api_v2=on but v2 is not available: {unavailable}; course updates and "
                    "deactivation will fail (use api_v2=auto to fall back to v1)",
                )
            reason = "api_v2=on; GET /v2/health and an authenticated v2 read answered"
        if self._mode is None:
            return CheckItem(
                kind="credentials",
                name="api_v2",
                status=CheckStatus.ERROR,
                detail="whether API v2 is available is not known: its probe failed (see the "
                "capabilities item); course updates and deactivation wait until it answers",
            )
        if self._uses_v2:
            return CheckItem(
                kind="credentials",
                name="api_v2",
                status=CheckStatus.OK,
                detail=f"API v2 available ({reason}): upsert_courses updates title and description, "
                "deactivate_course is reversible",
            )
        return CheckItem(
            kind="credentials",
            name="api_v2",
            status=CheckStatus.NOT_SUPPORTED,
            detail=f"API v2 unavailable ({reason}): v1 only, so upsert_courses cannot update a course "
            "and deactivate_course DELETES it",
        )


def _error_for(
    status: int,
    kind: str | None,
    message: str | None,
    *,
    where: str,
    headers: Mapping[str, str] | None = None,
) -> LMSConnectError:
    vendor = f"{kind}: {message}" if kind and message else message
    if status == 401:
        return AuthenticationError(
            f"{where}: TalentLMS rejected the API key", status=status, connector=SLUG, vendor_message=vendor
        )
    if status == 403:
        return PermissionDenied(
            f"{where}: the API is not enabled for this TalentLMS domain, or the domain is inactive",
            permission="API access (Account & Settings → Basic settings → Enable API)",
            status=status,
            connector=SLUG,
            vendor_message=vendor,
        )
    if status == 404:
        return NotFound(f"{where}: not found", status=status, connector=SLUG, vendor_message=vendor)
    if status == 429 or (message and "rate limit" in message.lower()):
        return RateLimited(
            f"{where}: TalentLMS rate limit reached",
            status=status,
            connector=SLUG,
            vendor_message=vendor,
            retry_after=retry_after(headers) if headers is not None else None,
        )
    if 400 <= status < 500:
        return InvalidInput(
            f"{where}: TalentLMS refused the request", status=status, connector=SLUG, vendor_message=vendor
        )
    return RemoteError(f"{where}: TalentLMS failed", status=status, connector=SLUG, vendor_message=vendor)


def _failed(key: str, code: str, message: str) -> ItemResult:
    return ItemResult(key=key, status=ItemStatus.FAILED, error=ItemError(code=code, message=message))


def _one_failed(action: Any, key: str, code: str, message: str) -> ActionResult:
    return ActionResult.one(
        action, key=key, status=ItemStatus.FAILED, error=ItemError(code=code, message=message)
    )


def _unit_type(name: str | None) -> CourseItemType:
    """The item type of a unit ``type``; each "|"-separated part is tried ("Presentation | Document")."""
    for part in (name or "").lower().split("|"):
        kind = _UNIT_TYPES.get(part.strip())
        if kind is not None:
            return kind
    return CourseItemType.UNKNOWN


def _list_of(body: Any, where: str) -> list[Any]:
    if not isinstance(body, list):
        raise InvalidRemoteResponse(
            f"{where} returned {type(body).__name__}, expected a list", connector=SLUG
        )
    return body
