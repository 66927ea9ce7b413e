"""The TalentLMS (API v1) connector."""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import datetime as dt
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

# Item error codes callers branch on.
COURSE_UPDATE_NOT_SUPPORTED: Final = "LMS.COURSE_UPDATE_NOT_SUPPORTED"
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
        "rate budgets; write path-style parameters yourself",
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


class TalentLMSConnector(Connector[TalentLMSConfig]):
    """TalentLMS through API v1.

    >>> async with lmsconnect.connect("talentlms", domain="acme.talentlms.com", api_key=key) as lms:
    ...     async for progression in lms.list(lmsconnect.CourseProgression):
    ...         print(progression.user_id, progression.status)
    """

    spec = ConnectorSpec(
        slug=SLUG,
        name="TalentLMS",
        config=TalentLMSConfig,
        api_versions=("v1",),
        simulator="lmsconnect_talentlms.testing:TalentLMSSimulator",
        docs_url="https://www.talentlms.com/pages/docs/TalentLMS-API-Documentation.pdf",
    )
    capabilities = CAPABILITIES
    # Longer upsert durations are InvalidInput before any call (the core checks it).
    max_duration_minutes = MAX_DURATION_MINUTES

    #: The hourly limit /v1/ratelimit reported when the connection opened (None if it could not be read).
    plan_limit: int | None = None
    #: Length of TalentLMS's plan window (an hour); tests against a fast simulator shorten it.
    plan_window_s: ClassVar[float] = HOUR_S
    _plan_window: _PlanWindow
    _calibrated: bool
    _calibration_lock: asyncio.Lock

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
        )

    async def on_open(self) -> None:
        self._calibrated = False
        self._calibration_lock = asyncio.Lock()
        self._converter = make_wire_converter(utc_offset=self._offset)

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
        await self._ensure_calibrated()
        return await self.http.request(method, path, **kwargs)

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
        """Every course of ``GET /v1/courses`` (once each), with its raw entry."""
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

    def _compare(self, origin_id: str, row: CourseRow, wanted: Mapping[str, str]) -> ItemResult:
        remote_id = row.id
        current = {
            "name": row.name or "",
            "description": row.description or "",
            "time_limit": str(row.time_limit or 0),
        }
        differs = [k for k, v in wanted.items() if (v.strip() if k != "time_limit" else v) != current[k]]
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
