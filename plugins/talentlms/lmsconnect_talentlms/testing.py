"""An offline simulator of the TalentLMS API (v1, and v2 for courses): for tests, demos, benchmarks.

Example::

    async with TalentLMSSimulator(users=50, courses=5, enrollments=120, seed=1) as sim:
        async with lmsconnect.connect("talentlms", **sim.connect_config) as lms:
            async for user in lms.users():
                ...
        assert sim.calls_by_route["GET /v1/courses/id"] == 5

It follows TalentLMS's "API Documentation, Version 6.0" (the v1 reference) and the facts collected by
client libraries where the reference is silent:

* URLs ``{url}/v1/<action>[/<key>:<value>,<key>:<value>...]`` (path-style parameters), e.g.
  ``/v1/users/page_size:25,page_number:2``, ``/v1/courses/id:12``,
  ``/v1/removeuserfromcourse/user_id:3,course_id:7``; POST actions read form-encoded bodies.
* HTTP Basic auth with the API key as the user name and an empty password; a wrong or missing key is a
  401, a domain whose API is not enabled (``api_enabled=False``) is a 403.
* JSON as TalentLMS sends it: numbers and ids as strings, dates as ``dd/mm/yyyy, HH:MM:SS`` (UTC here)
  with ``*_timestamp`` siblings where the reference has them, ``""`` for an empty date, ``null`` for some
  empty text and timestamps.
* Errors as ``{"error": {"type": "invalid_request_error" | "api_error", "message": ...}}`` with the
  status codes of the reference: 400, 401, 403, 404, 500; a rate-limit rejection is a 429 carrying
  ``X-RateLimit-Limit``, ``X-RateLimit-Remaining`` and ``X-RateLimit-Reset`` (epoch seconds).
* Rate limits: at most 200 calls in any 5 s (a sliding window) and an hourly plan budget (2,000, the
  Small/Basic plans) in a fixed window that starts at the first call; ``GET /v1/ratelimit`` reports the
  hourly budget and does not count against it. Rejected calls do not count either.
* ``addusertocourse``: the user's account type decides the role. ``SuperAdmin``, ``Admin-Type`` and
  ``Trainer-Type`` users are always enrolled as ``instructor`` (the ``role`` argument cannot change
  that); learner types are enrolled as ``learner``. The seeded tenant always has users of all four types
  (ids 1 to 4 are SuperAdmin, Admin-Type, Trainer-Type, Learner-Type when there are at least 4 users).
* ``deletecourse`` removes the course and its enrolments for good.
* API v2 (on by default; ``api_v2=False`` is a tenant without it, answering 404): the health check, the
  course list and detail, the batch course upsert and its background tasks, on the same tenant and the
  same rate limits; see ``lmsconnect_talentlms._simv2`` for what they do.

Faults are opt-in and deterministic for a given ``fault_seed``: whether a request is faulted depends on
the seed, the request (method, path and body) and how many times that same request was received before,
not on the order in which concurrent requests arrive; a retried request therefore gets a fresh draw.
``fault_rate`` answers a share of calls with a 500, ``drop_rate`` closes the connection without an
answer, ``slow_rate`` delays a share by ``slow_seconds``, and ``throttle_rate`` starts 429 bursts that
reject every call for ``throttle_seconds``. ``fault_routes`` limits faults to some routes (e.g.
``{"POST /v1/createcourse"}``). A dropped connection is dropped after the request was applied, as
when a real answer is lost on the way back.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import math
import random
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar, Final
from urllib.parse import unquote

import attrs
from aiohttp import web

from lmsconnect.testing import SimulatorServer

from ._simv2 import V2Endpoints

__all__ = [
    "INSTRUCTOR_USER_TYPES",
    "LEARNER_USER_TYPE",
    "SimCourse",
    "SimEnrollment",
    "SimUnit",
    "SimUser",
    "TalentLMSSimulator",
]

#: Account types that TalentLMS always enrolls as course instructors (trainers).
INSTRUCTOR_USER_TYPES: Final = frozenset({"SuperAdmin", "Admin-Type", "Trainer-Type"})
#: The default learner account type.
LEARNER_USER_TYPE: Final = "Learner-Type"

DEFAULT_API_KEY: Final = "sim-talentlms-api-key"
DEFAULT_DOMAIN: Final = "sim.talentlms.com"

# 2020-01-01T00:00:00Z: seeded dates are drawn after this so that data never depends on the clock.
_EPOCH_BASE: Final = 1_577_836_800
_THREE_YEARS: Final = 3 * 365 * 86_400

_FIRST_NAMES: Final = (
    "Alice", "Bruno", "Chloé", "Dimitris", "Eva", "Farid", "Grace", "Hiro", "Ines", "Jonas",
    "Katerina", "Liam", "Maria", "Nikos", "Olga", "Pedro", "Quinn", "Rosa", "Sven", "Tanja",
)  # fmt: skip
_LAST_NAMES: Final = (
    "Andersson", "Brown", "Costa", "Dubois", "Economou", "Fischer", "García", "Hansen", "Ivanova",
    "Jensen", "Kowalski", "Lambert", "Müller", "Nakamura", "O'Brien", "Papadopoulos", "Rossi",
)  # fmt: skip
_TOPICS: Final = (
    "Onboarding", "Security awareness", "GDPR basics", "Sales fundamentals", "Leadership",
    "Customer support", "Excel for analysts", "Code of conduct", "Fire safety", "Negotiation",
)  # fmt: skip
_TIMEZONE: Final = "(GMT 00:00) Greenwich Mean Time: Edinburgh, Lisbon, London"
# Labels as TalentLMS shows them (the reference's user examples and its time-zone mappings).
_TIMEZONES: Final = (
    _TIMEZONE, _TIMEZONE, "(GMT +02:00) Athens, Istanbul, Minsk", "(GMT +01:00) Berlin, Germany",
    "(GMT -05:00) Eastern Time (US & Canada)",
)  # fmt: skip
_LANGUAGES: Final = ("English", "English", "English", "Greek", "German", "Spanish")
#: A custom account type a domain's admins made (TalentLMS enrolls it as a learner here).
CUSTOM_USER_TYPE: Final = "Sales-Team"
#: The custom user fields of the seeded domain (``/v1/getcustomregistrationfields``).
CUSTOM_USER_FIELDS: Final[tuple[dict[str, str | None], ...]] = (
    {"key": "custom_field_1", "type": "text", "name": "Department", "dropdown_values": None},
    {"key": "custom_field_2", "type": "dropdown", "name": "Office", "dropdown_values": "Athens;Berlin"},
    {"key": "custom_field_3", "type": "checkbox", "name": "Newsletter", "dropdown_values": None},
)
_CUSTOM_KEYS: Final = tuple(str(f["key"]) for f in CUSTOM_USER_FIELDS)
_DEPARTMENTS: Final = ("Sales", "Support", "Engineering", "Finance", "")
#: The seeded categories: (id, name, parent id); "Security" sits inside "Compliance".
CATEGORIES: Final = ((1, "Compliance", None), (2, "Security", 1), (3, "Sales", None))
#: Unit types TalentLMS sends (the reference, client libraries), and one no mapping knows.
UNIT_TYPES: Final = (
    "Content", "Web content", "Video", "Audio", "Presentation | Document", "SCORM | xAPI | cmi5",
    "Test", "Survey", "Assignment", "ILT", "TalentCraft",
)  # fmt: skip


@attrs.define(kw_only=True)
class SimUser:
    """A user account in the simulated tenant (times are UTC epoch seconds)."""

    id: int
    login: str
    first_name: str
    last_name: str
    email: str
    user_type: str = LEARNER_USER_TYPE
    status: str = "active"
    created_on: int = _EPOCH_BASE
    last_updated: int = _EPOCH_BASE
    deactivation_date: int | None = None
    language: str = "English"
    level: int = 1
    points: int = 0
    credits: int = 0
    bio: str | None = None
    restrict_email: bool = False
    timezone: str = _TIMEZONE
    #: ``custom_field_N`` → value; every field of `CUSTOM_USER_FIELDS` is served, "" when unset.
    custom_fields: dict[str, str] = attrs.Factory(dict)


@attrs.define(kw_only=True)
class SimUnit:
    """A unit of a course; a ``Section`` unit heads the units after it (TalentLMS lists them flat)."""

    id: int
    type: str
    name: str
    #: A Section's delay in minutes ("" when none); other units have none.
    delay_time: int | None = None


@attrs.define(kw_only=True)
class SimCourse:
    """A course in the simulated tenant; ``time_limit`` is in whole days, 0 meaning none."""

    id: int
    name: str
    code: str = ""
    category_id: int | None = None
    description: str = ""
    price: str = "$0"
    status: str = "active"
    creation_date: int = _EPOCH_BASE
    last_update_on: int = _EPOCH_BASE
    creator_id: int = 1
    hide_from_catalog: bool = False
    time_limit: int = 0
    start_datetime: int | None = None
    expiration_datetime: int | None = None
    level: int | None = 1
    shared: bool = False
    #: The course image; None serves TalentLMS's placeholder.
    avatar: str | None = None
    units: list[SimUnit] = attrs.Factory(list)


@attrs.define(kw_only=True)
class SimEnrollment:
    """A user's enrolment in a course; instructors never progress."""

    user_id: int
    course_id: int
    role: str
    enrolled_on: int
    completed_on: int | None = None
    completion_percentage: int = 0
    total_time_seconds: int = 0
    expired_on: int | None = None
    #: False: the course detail leaves ``total_time_seconds`` out (``total_time`` only), as some answers do.
    time_seconds_given: bool = True




class _ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        kind: str = "invalid_request_error",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.message = message
        self.headers = headers


def _fmt_datetime(ts: int | None) -> str:
    if ts is None:
        return ""
    return time.strftime("%d/%m/%Y, %H:%M:%S", time.gmtime(ts))


def _fmt_ts(ts: int | None, empty: str | None = "") -> str | None:
    return empty if ts is None else str(ts)


def _fmt_total_time(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m {secs}s"
    return f"{minutes}m {secs}s"


def _parse_path_params(raw: str) -> dict[str, str]:
    """``page_size:25,page_number:2`` → ``{"page_size": "25", "page_number": "2"}``."""
    params: dict[str, str] = {}
    for part in raw.split(","):
        if not part:
            continue
        key, sep, value = part.partition(":")
        if not sep:
            raise _ApiError(400, "Invalid arguments provided")
        params[unquote(key)] = unquote(value)
    return params


def _int_param(params: Mapping[str, str], name: str) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise _ApiError(400, "Invalid arguments provided") from None


class TalentLMSSimulator(SimulatorServer):
    """A TalentLMS v1 API on 127.0.0.1, seeded with a deterministic tenant (see the module docstring)."""

    option_help: ClassVar[Mapping[str, str]] = {
        "api_key": "the API key the simulator accepts (HTTP Basic user name)",
        "api_enabled": "false: the domain's API is not enabled, every call is a 403",
        "rate_limits": "false: no 429s at all (burst and hourly limits off)",
        "burst_limit": "calls allowed in any burst_window seconds (TalentLMS: 200)",
        "burst_window": "seconds of the sliding burst window (TalentLMS: 5)",
        "hourly_limit": "calls allowed per hourly_window, the plan's budget (Small/Basic plans: 2000)",
        "hourly_window": "seconds of the fixed plan-budget window, from the first call (3600)",
        "fault_rate": "share of calls (0-1) answered with a 500",
        "drop_rate": "share of calls (0-1) whose connection is closed after the call was applied",
        "slow_rate": "share of calls (0-1) delayed by slow_seconds",
        "slow_seconds": "delay of a slow call, in seconds",
        "throttle_rate": "share of calls (0-1) that start a 429 burst",
        "throttle_seconds": "length of a 429 burst, in seconds",
        "fault_seed": "seed of the fault draws: the same seed gives the same faults",
        "fault_routes": "faults only on these routes, comma-separated (e.g. 'POST /v1/createcourse')",
        "api_v2": "false: a tenant without API v2 (every /api/v2 path answers 404)",
        "task_seconds": "seconds before an API v2 batch task applies its courses",
        "batch_fail_codes": "course codes an API v2 batch task fails, comma-separated",
    }

    def __init__(
        self,
        *,
        users: int = 40,
        courses: int = 8,
        enrollments: int = 120,
        seed: int = 0,
        latency: float = 0.0,
        api_key: str = DEFAULT_API_KEY,
        api_enabled: bool = True,
        rate_limits: bool = True,
        burst_limit: int = 200,
        burst_window: float = 5.0,
        hourly_limit: int = 2000,
        hourly_window: float = 3600.0,
        fault_rate: float = 0.0,
        drop_rate: float = 0.0,
        slow_rate: float = 0.0,
        slow_seconds: float = 2.0,
        throttle_rate: float = 0.0,
        throttle_seconds: float = 1.0,
        fault_seed: int = 0,
        fault_routes: Iterable[str] | str | None = None,
        api_v2: bool = True,
        task_seconds: float = 0.2,
        batch_fail_codes: Iterable[str] | str = (),
    ) -> None:
        if min(users, courses, enrollments) < 0:
            raise ValueError("users, courses and enrollments must not be negative")
        self.api_key = api_key
        self.api_enabled = api_enabled
        self.latency = latency
        self.rate_limits = rate_limits
        self.burst_limit = burst_limit
        self.burst_window = burst_window
        self.hourly_limit = hourly_limit
        self.hourly_window = hourly_window
        self.fault_rate = fault_rate
        self.drop_rate = drop_rate
        self.slow_rate = slow_rate
        self.slow_seconds = slow_seconds
        self.throttle_rate = throttle_rate
        self.throttle_seconds = throttle_seconds
        self.fault_seed = fault_seed
        #: Routes (as in :attr:`calls_by_route`) that faults may hit; None means every route.
        if isinstance(fault_routes, str):
            # From the CLI: --option "fault_routes=POST /v1/createcourse,GET /v1/users"
            fault_routes = [r.strip() for r in fault_routes.split(",") if r.strip()]
        self.fault_routes: frozenset[str] | None = None if fault_routes is None else frozenset(fault_routes)
        self.api_v2 = api_v2
        if task_seconds < 0:
            raise ValueError("task_seconds must not be negative")
        self.task_seconds = task_seconds
        if isinstance(batch_fail_codes, str):
            batch_fail_codes = [c.strip() for c in batch_fail_codes.split(",") if c.strip()]
        #: Course codes whose items an API v2 batch task fails.
        self.batch_fail_codes: set[str] = set(batch_fail_codes)
        #: The API v2 endpoints and their background tasks.
        self.v2 = V2Endpoints(self)

        #: Every HTTP request received, whatever its outcome.
        self.calls = 0
        #: Requests per route: ``"GET /v1/users"``, ``"GET /v1/courses/id"``, ``"POST /v1/createcourse"``...
        self.calls_by_route: collections.Counter[str] = collections.Counter()
        #: Requests answered 429 (rate limit or throttle burst).
        self.rejected_calls = 0
        #: Injected faults by kind: ``"500"``, ``"drop"``, ``"slow"``, ``"429"``.
        self.faults: collections.Counter[str] = collections.Counter()

        self._users: dict[int, SimUser] = {}
        self._courses: dict[int, SimCourse] = {}
        # course id → user id → enrolment; the course detail endpoint reads it in one lookup.
        self._enrollments: dict[int, dict[int, SimEnrollment]] = {}
        self._next_user_id = 1
        self._next_course_id = 1
        self._next_unit_id = 1

        self._burst_log: collections.deque[float] = collections.deque()
        self._hour_start: float | None = None
        self._hour_count = 0
        self._throttled_until = 0.0
        self._seen_requests: collections.Counter[str] = collections.Counter()

        self._seed(users, courses, enrollments, random.Random(seed))
        # A second stream, so the profile and content details leave the first one's data as it was.
        self._seed_details(random.Random(f"{seed}/details"))

    # ------------------------------------------------------------------ lifecycle

    url_path = "/api"  # url is the API root, e.g. http://127.0.0.1:54321/api (TalentLMS: https://<domain>/api)

    def make_app(self) -> web.Application:
        app = web.Application()
        # Not part of TalentLMS: lets a benchmark or a test in another process read the counters.
        app.router.add_get("/_simulator/stats", self._handle_stats)
        app.router.add_route("*", "/api/v1/{action}", self._handle)
        app.router.add_route("*", "/api/v1/{action}/{params:.*}", self._handle)
        app.router.add_route("*", "/api/v2/{path:.*}", self.v2.handle)
        return app

    @property
    def connect_config(self) -> dict[str, Any]:
        """Keyword arguments for ``lmsconnect.connect("talentlms", **config)`` to reach this simulator."""
        return {"base_url": self.url, "api_key": self.api_key}

    # ------------------------------------------------------------------ in-process helpers

    @property
    def users(self) -> list[SimUser]:
        """All users, by id."""
        return [self._users[k] for k in sorted(self._users)]

    @property
    def courses(self) -> list[SimCourse]:
        """All courses, by id."""
        return [self._courses[k] for k in sorted(self._courses)]

    def user(self, user_id: int) -> SimUser | None:
        return self._users.get(user_id)

    def course(self, course_id: int) -> SimCourse | None:
        return self._courses.get(course_id)

    def courses_with_code(self, code: str) -> list[SimCourse]:
        return [c for c in self.courses if c.code == code]

    def enrollments(self, *, course_id: int | None = None, user_id: int | None = None) -> list[SimEnrollment]:
        """Enrolments, optionally of one course and/or one user, ordered by (course, user)."""
        out: list[SimEnrollment] = []
        for cid in sorted(self._enrollments):
            if course_id is not None and cid != course_id:
                continue
            by_user = self._enrollments[cid]
            for uid in sorted(by_user):
                if user_id is None or uid == user_id:
                    out.append(by_user[uid])
        return out

    def enrollment(self, user_id: int, course_id: int) -> SimEnrollment | None:
        return self._enrollments.get(course_id, {}).get(user_id)

    @property
    def enrollment_count(self) -> int:
        return sum(len(v) for v in self._enrollments.values())

    def users_of_type(self, user_type: str) -> list[SimUser]:
        return [u for u in self.users if u.user_type == user_type]

    def add_user(
        self,
        *,
        first_name: str = "New",
        last_name: str = "User",
        email: str | None = None,
        login: str | None = None,
        user_type: str = LEARNER_USER_TYPE,
        status: str = "active",
        created_on: int | None = None,
    ) -> SimUser:
        uid = self._next_user_id
        self._next_user_id += 1
        created = _EPOCH_BASE + _THREE_YEARS if created_on is None else created_on
        user = SimUser(
            id=uid,
            login=login or f"user{uid}",
            first_name=first_name,
            last_name=last_name,
            email=email or f"user{uid}@example.com",
            user_type=user_type,
            status=status,
            created_on=created,
            last_updated=created,
        )
        self._users[uid] = user
        return user

    def remove_user(self, user_id: int) -> None:
        """Delete a user and their enrolments (as ``deleteuser`` with ``permanent:yes`` would)."""
        del self._users[user_id]
        for by_user in self._enrollments.values():
            by_user.pop(user_id, None)

    def add_course(
        self,
        *,
        name: str = "New course",
        code: str = "",
        description: str = "",
        status: str = "active",
        time_limit: int = 0,
        creation_date: int | None = None,
    ) -> SimCourse:
        cid = self._next_course_id
        self._next_course_id += 1
        created = _EPOCH_BASE + _THREE_YEARS if creation_date is None else creation_date
        course = SimCourse(
            id=cid,
            name=name,
            code=code,
            description=description,
            status=status,
            time_limit=time_limit,
            creation_date=created,
            last_update_on=created,
        )
        self._courses[cid] = course
        self._enrollments[cid] = {}
        return course

    def add_unit(
        self, course_id: int, *, type: str = "Content", name: str = "New unit", index: int | None = None
    ) -> SimUnit:
        """Add a unit to a course, at the end or at `index` in its flat list."""
        unit = SimUnit(id=self._next_unit_id, type=type, name=name)
        self._next_unit_id += 1
        units = self._courses[course_id].units
        units.insert(len(units) if index is None else index, unit)
        return unit

    def remove_unit(self, course_id: int, unit_id: int) -> None:
        course = self._courses[course_id]
        course.units = [u for u in course.units if u.id != unit_id]

    def remove_course(self, course_id: int) -> None:
        del self._courses[course_id]
        self._enrollments.pop(course_id, None)

    def enroll(
        self,
        user_id: int,
        course_id: int,
        *,
        role: str | None = None,
        enrolled_on: int | None = None,
    ) -> SimEnrollment:
        """Enrol directly; the role defaults to what TalentLMS would pick from the account type."""
        user = self._users[user_id]
        if course_id not in self._courses:
            raise KeyError(course_id)
        enrollment = SimEnrollment(
            user_id=user_id,
            course_id=course_id,
            role=role or self.role_for(user),
            enrolled_on=_EPOCH_BASE + _THREE_YEARS if enrolled_on is None else enrolled_on,
        )
        self._enrollments[course_id][user_id] = enrollment
        return enrollment

    def unenroll(self, user_id: int, course_id: int) -> None:
        del self._enrollments[course_id][user_id]

    def set_progress(
        self,
        user_id: int,
        course_id: int,
        *,
        percentage: int,
        completed_on: int | None = None,
        expired_on: int | None = None,
    ) -> SimEnrollment:
        enrollment = self._enrollments[course_id][user_id]
        enrollment.completion_percentage = percentage
        enrollment.completed_on = completed_on
        enrollment.expired_on = expired_on
        return enrollment

    @staticmethod
    def role_for(user: SimUser) -> str:
        return "instructor" if user.user_type in INSTRUCTOR_USER_TYPES else "learner"

    def reset_counters(self) -> None:
        """Zero the call counters (the rate-limit windows are left alone)."""
        self.calls = 0
        self.calls_by_route.clear()
        self.rejected_calls = 0
        self.faults.clear()

    def reset_rate_limits(self) -> None:
        self._burst_log.clear()
        self._hour_start = None
        self._hour_count = 0
        self._throttled_until = 0.0

    def rate_limit_status(self) -> dict[str, int]:
        """The hourly window as ``/v1/ratelimit`` reports it, with ints."""
        now = time.monotonic()
        self._roll_hour(now)
        if self._hour_start is None:
            # The window this answer describes starts now, so the reset it reports holds: starting it at
            # the next counted call instead made the real reset later than the one reported, and a
            # client that trusted the report met a 429 (a flaky test under load).
            self._hour_start = now
        reset = math.ceil(time.time() + (self._hour_start + self.hourly_window - now))
        return {
            "limit": self.hourly_limit,
            "remaining": max(0, self.hourly_limit - self._hour_count),
            "reset": reset,
        }

    # ------------------------------------------------------------------ seeding

    def _seed(self, n_users: int, n_courses: int, n_enrollments: int, rng: random.Random) -> None:
        forced = ("SuperAdmin", "Admin-Type", "Trainer-Type", LEARNER_USER_TYPE)
        for i in range(n_users):
            if i < len(forced):
                user_type = forced[i]
            else:
                draw = rng.random()
                user_type = (
                    "Admin-Type" if draw < 0.02 else "Trainer-Type" if draw < 0.08 else LEARNER_USER_TYPE
                )
            first = rng.choice(_FIRST_NAMES)
            last = rng.choice(_LAST_NAMES)
            created = _EPOCH_BASE + rng.randrange(_THREE_YEARS)
            user = self.add_user(
                first_name=first,
                last_name=last,
                email=None,
                user_type=user_type,
                created_on=created,
            )
            slug = "".join(ch for ch in first.lower() if ch.isascii() and ch.isalpha())
            user.login = f"{slug}{user.id}"
            user.email = f"{slug}.{user.id}@example.com"
            user.last_updated = created + rng.randrange(86_400 * 60)
            user.level = rng.randint(1, 5)
            user.points = rng.randrange(0, 2000, 10)
            user.bio = rng.choice((None, "", f"{first} works in {rng.choice(_TOPICS).lower()}."))
            if i >= len(forced) and rng.random() < 0.08:
                user.status = "inactive"
                user.deactivation_date = user.last_updated
        for i in range(n_courses):
            created = _EPOCH_BASE + rng.randrange(_THREE_YEARS)
            topic = rng.choice(_TOPICS)
            course = self.add_course(
                name=f"{topic} {i + 1}",
                # Course 1 always has a code, so every tenant shows a course found by code.
                code=f"C-{i + 1:04d}" if rng.random() < 0.3 or i == 0 else "",
                description=rng.choice(("", f"Everything about {topic.lower()}.")),
                status="inactive" if rng.random() < 0.1 else "active",
                time_limit=rng.choice((0, 0, 7, 30)),
                creation_date=created,
            )
            course.last_update_on = created + rng.randrange(86_400 * 90)
            course.category_id = rng.choice((None, 1, 2, 3))
            # How many units; _seed_details draws what they are.
            course.units = [SimUnit(id=0, type="Content", name="") for _ in range(rng.randint(1, 6))]
        pairs = n_users * n_courses
        if not pairs:
            return
        user_ids = sorted(self._users)
        course_ids = sorted(self._courses)
        for index in sorted(rng.sample(range(pairs), min(n_enrollments, pairs))):
            user = self._users[user_ids[index // n_courses]]
            course = self._courses[course_ids[index % n_courses]]
            enrolled = max(user.created_on, course.creation_date) + rng.randrange(86_400 * 30)
            enrollment = self.enroll(user.id, course.id, enrolled_on=enrolled)
            if enrollment.role == "instructor":
                continue
            draw = rng.random()
            if draw < 0.35:
                enrollment.completion_percentage = 100
                enrollment.completed_on = enrolled + rng.randrange(60, 86_400 * 20)
                enrollment.total_time_seconds = rng.randrange(300, 20_000)
            elif draw < 0.65:
                enrollment.completion_percentage = rng.randint(1, 99)
                enrollment.total_time_seconds = rng.randrange(30, 10_000)
            elif draw < 0.68:
                enrollment.expired_on = enrolled + 86_400 * 30

    def _seed_details(self, rng: random.Random) -> None:
        """Profiles (language, time zone, custom fields, a custom account type) and course content."""
        for user in self.users:
            user.language = rng.choice(_LANGUAGES)
            user.timezone = rng.choice(_TIMEZONES)
            user.custom_fields = {
                "custom_field_1": rng.choice(_DEPARTMENTS),
                "custom_field_2": rng.choice(("Athens", "Berlin", "")),
                "custom_field_3": rng.choice(("on", "off")),
            }
            if user.id > 4 and user.user_type == LEARNER_USER_TYPE and rng.random() < 0.1:
                user.user_type = CUSTOM_USER_TYPE
        for index, course in enumerate(self.courses):
            if rng.random() < 0.5:
                course.avatar = f"https://sim.talentlms.com/pages/images/courses/{course.id}.png"
            # Every tenant shows every unit type and a section: course 1 has them all.
            count = len(course.units)
            if index == 0:
                types = ["Section", *UNIT_TYPES[:5], "Section", *UNIT_TYPES[5:]]
            else:
                types = [rng.choice(UNIT_TYPES) for _ in range(count)]
                if count > 2 and rng.random() < 0.5:
                    types[rng.randrange(1, count)] = "Section"
            course.units = []
            for n, kind in enumerate(types):
                unit = self.add_unit(course.id, type=kind, name=f"{kind} {n + 1}")
                if kind == "Section":
                    unit.name = f"Section {n + 1}"
                    unit.delay_time = rng.choice((None, 60))
        for enrollment in self.enrollments():
            # Some answers carry total_time only (the simulator keeps it deterministic per pair).
            if (enrollment.user_id * 31 + enrollment.course_id) % 17 == 0:
                enrollment.time_seconds_given = False

    # ------------------------------------------------------------------ HTTP

    def stats(self) -> dict[str, Any]:
        """Counters, tenant sizes and limits (also served, unauthenticated, at ``/_simulator/stats``)."""
        return {
            "calls": self.calls,
            "calls_by_route": dict(self.calls_by_route),
            "rejected_calls": self.rejected_calls,
            "faults": dict(self.faults),
            "counts": {
                "users": len(self._users),
                "courses": len(self._courses),
                "enrollments": self.enrollment_count,
                "learner_enrollments": sum(1 for e in self.enrollments() if e.role == "learner"),
            },
            "limits": {
                "rate_limits": self.rate_limits,
                "burst_limit": self.burst_limit,
                "burst_window": self.burst_window,
                "hourly_limit": self.hourly_limit,
                "hourly_window": self.hourly_window,
            },
        }

    async def _handle_stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats())

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        action = request.match_info["action"].lower()
        try:
            path_params = _parse_path_params(request.match_info.get("params", ""))
        except _ApiError:
            path_params = {}
            bad_params = True
        else:
            bad_params = False
        route = f"{request.method} /v1/{action}"
        if action in ("users", "courses"):
            for key in ("id", "email", "username"):
                if key in path_params:
                    route += f"/{key}"
                    break

        form: dict[str, str] = {}
        if request.method == "POST" and request.content_type in (
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ):
            posted = await request.post()
            form = {k: v for k, v in posted.items() if isinstance(v, str)}
        return await self._serve(
            request,
            route,
            form,
            lambda throttle, fail: self._respond(
                request, action, {**path_params, **form}, bad_params, throttle, fail
            ),
        )

    async def _serve(
        self,
        request: web.Request,
        route: str,
        form: Mapping[str, str],
        respond: Callable[[float, float], web.Response],
    ) -> web.StreamResponse:
        """Count a call (v1 or v2), draw its faults, answer it with `respond(throttle, fail)`, then
        spend the latency and drop the connection if drawn."""
        self.calls += 1
        self.calls_by_route[route] += 1
        self.v2.settle()
        rng = self._fault_rng(request, form, route)
        slow, drop, throttle, fail = (rng.random() for _ in range(4))
        # The request is admitted, counted and applied when it arrives; the latency is spent before
        # the answer leaves, as on a real network where the rate counter sits at the vendor's door.
        response = respond(throttle, fail)
        delay = self.latency
        if slow < self.slow_rate:
            self.faults["slow"] += 1
            delay += self.slow_seconds
        if delay > 0:
            await asyncio.sleep(delay)
        if drop < self.drop_rate:
            self.faults["drop"] += 1
            if request.transport is not None:
                request.transport.abort()
            # The connection is gone; aiohttp discards whatever we return.
            return web.Response(status=500)
        return response

    def _respond(
        self,
        request: web.Request,
        action: str,
        params: dict[str, str],
        bad_params: bool,
        throttle_draw: float,
        fail_draw: float,
    ) -> web.Response:
        try:
            self._authenticate(request)
            if action != "ratelimit":
                self._admit(throttle_draw)
                if fail_draw < self.fault_rate:
                    self.faults["500"] += 1
                    raise _ApiError(500, "Internal server error", kind="api_error")
            if bad_params:
                raise _ApiError(400, "Invalid arguments provided")
            return web.json_response(self._dispatch(request.method, action, params))
        except _ApiError as err:
            if err.status == 429:
                self.rejected_calls += 1
            return web.json_response(
                {"error": {"type": err.kind, "message": err.message}},
                status=err.status,
                headers=err.headers,
            )

    def _fault_rng(self, request: web.Request, form: Mapping[str, str], route: str) -> random.Random:
        if not (self.fault_rate or self.drop_rate or self.slow_rate or self.throttle_rate):
            return _NO_FAULTS
        if self.fault_routes is not None and route not in self.fault_routes:
            return _NO_FAULTS
        key = f"{request.method} {request.path} {sorted(form.items())}"
        nth = self._seen_requests[key]
        self._seen_requests[key] += 1
        # A str seed is hashed with SHA-512 by random.Random, so this is stable across processes.
        return random.Random(f"{self.fault_seed}|{key}|{nth}")

    def _authenticate(self, request: web.Request) -> None:
        header = request.headers.get("Authorization", "")
        scheme, _, encoded = header.partition(" ")
        key = None
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                decoded = ""
            key = decoded.partition(":")[0]
        if key != self.api_key:
            raise _ApiError(401, "Invalid API key provided")
        if not self.api_enabled:
            raise _ApiError(
                403, "API is not enabled for the specified domain or the domain is currently inactive"
            )

    def _roll_hour(self, now: float) -> None:
        if self._hour_start is not None and now - self._hour_start >= self.hourly_window:
            self._hour_start = None
            self._hour_count = 0

    def _admit(self, throttle_draw: float) -> None:
        """Count the call against both windows, or raise a 429 with the rate-limit headers."""
        now = time.monotonic()
        wall = time.time()
        if now < self._throttled_until:
            self.faults["429"] += 1
            raise self._too_many(self.burst_limit, wall + self._throttled_until - now)
        if throttle_draw < self.throttle_rate:
            self.faults["429"] += 1
            self._throttled_until = now + self.throttle_seconds
            raise self._too_many(self.burst_limit, wall + self.throttle_seconds)
        if self.rate_limits:
            self._roll_hour(now)
            while self._burst_log and now - self._burst_log[0] >= self.burst_window:
                self._burst_log.popleft()
            if len(self._burst_log) >= self.burst_limit:
                raise self._too_many(self.burst_limit, wall + self._burst_log[0] + self.burst_window - now)
            if self._hour_start is not None and self._hour_count >= self.hourly_limit:
                raise self._too_many(self.hourly_limit, wall + self._hour_start + self.hourly_window - now)
        if self._hour_start is None:
            self._hour_start = now
        self._hour_count += 1
        self._burst_log.append(now)

    def _too_many(self, limit: int, reset_at: float) -> _ApiError:
        headers = {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": str(math.ceil(reset_at)),
        }
        return _ApiError(429, "API rate limit exceeded", kind="api_error", headers=headers)

    def _dispatch(self, method: str, action: str, params: dict[str, str]) -> Any:
        handler = _ACTIONS.get(action)
        if handler is None:
            raise _ApiError(400, "The requested API action does not exist")
        allowed, func = handler
        if method not in allowed:
            raise _ApiError(400, "Invalid arguments provided")
        return func(self, params)

    # ------------------------------------------------------------------ actions

    def _a_users(self, params: dict[str, str]) -> Any:
        user_id = _int_param(params, "id")
        if user_id is not None:
            return self._user_detail(self._get_user(user_id))
        if "email" in params:
            for user in self._users.values():
                if user.email.lower() == params["email"].lower():
                    return self._user_detail(user)
            raise _ApiError(404, "The requested user does not exist")
        if "username" in params:
            for user in self._users.values():
                if user.login == params["username"]:
                    return self._user_detail(user)
            raise _ApiError(404, "The requested user does not exist")
        users = self.users
        page_size = _int_param(params, "page_size")
        page_number = _int_param(params, "page_number")
        if page_size is not None:
            if page_size < 1 or (page_number is not None and page_number < 1):
                raise _ApiError(400, "Invalid arguments provided")
            start = ((page_number or 1) - 1) * page_size
            users = users[start : start + page_size]
        return [self._user_summary(u) for u in users]

    def _a_courses(self, params: dict[str, str]) -> Any:
        course_id = _int_param(params, "id")
        if course_id is not None:
            return self._course_detail(self._get_course(course_id))
        if params:
            raise _ApiError(400, "Invalid arguments provided")
        return [self._course_summary(c) for c in self.courses]

    def _a_createcourse(self, params: dict[str, str]) -> Any:
        name = params.get("name", "").strip()
        if not name:
            raise _ApiError(400, "Invalid arguments provided")
        time_limit = _int_param(params, "time_limit") or 0
        if time_limit < 0:
            raise _ApiError(400, "Invalid arguments provided")
        category_id = _int_param(params, "category_id")
        creator_id = _int_param(params, "creator_id")
        if creator_id is not None:
            self._get_user(creator_id)
        now = int(time.time())
        course = self.add_course(
            name=name,
            code=params.get("code", ""),
            description=params.get("description", ""),
            time_limit=time_limit,
            creation_date=now,
        )
        course.category_id = category_id
        course.creator_id = creator_id or 1
        course.price = params.get("price") or "$0"
        course.start_datetime = _int_param(params, "start_datetime")
        course.expiration_datetime = _int_param(params, "expiration_datetime")
        course.level = None
        return self._course_summary(course)

    def _a_deletecourse(self, params: dict[str, str]) -> Any:
        course_id = _int_param(params, "course_id")
        if course_id is None:
            raise _ApiError(400, "Invalid arguments provided")
        self._get_course(course_id)
        deleted_by = _int_param(params, "deleted_by_user_id")
        if deleted_by is not None:
            self._get_user(deleted_by)
        self.remove_course(course_id)
        return {"message": "Operation completed successfully"}

    def _a_addusertocourse(self, params: dict[str, str]) -> Any:
        user = self._user_from(params)
        course = self._course_from(params)
        role = params.get("role") or None
        if role not in (None, "learner", "instructor"):
            raise _ApiError(400, "Invalid arguments provided")
        if user.id in self._enrollments[course.id]:
            raise _ApiError(400, "The requested user is already enrolled in this course")
        # The account type wins: an instructor-capable account cannot be enrolled as a learner, and a
        # learner account cannot teach.
        enrollment = self.enroll(user.id, course.id, enrolled_on=int(time.time()))
        return [{"user_id": str(user.id), "course_id": str(course.id), "role": enrollment.role}]

    def _a_removeuserfromcourse(self, params: dict[str, str]) -> Any:
        user = self._user_from(params)
        course = self._course_from(params)
        if user.id not in self._enrollments[course.id]:
            raise _ApiError(400, "The requested user is not enrolled in this course")
        self.unenroll(user.id, course.id)
        return {"user_id": str(user.id), "course_id": str(course.id), "course_name": course.name}

    def _a_getuserstatusincourse(self, params: dict[str, str]) -> Any:
        user = self._user_from(params)
        course = self._course_from(params)
        enrollment = self._enrollments[course.id].get(user.id)
        if enrollment is None:
            raise _ApiError(400, "The requested user is not enrolled in this course")
        status = _completion_status(enrollment)
        content = [u for u in course.units if u.type != "Section"]
        per_unit = max(1, enrollment.total_time_seconds // max(1, len(content)))
        done_units = (
            len(content)
            if enrollment.completed_on
            else (len(content) * enrollment.completion_percentage // 100)
        )
        units = []
        for n, unit in enumerate(content):
            done = n < done_units
            completed = enrollment.completed_on if done else None
            units.append(
                {
                    "id": str(unit.id),
                    "name": unit.name,
                    "type": unit.type,
                    "completion_status": "Completed" if done else "Not attempted",
                    "completed_on": _fmt_datetime(completed),
                    "completed_on_timestamp": _fmt_ts(completed),
                    "score": "100" if done and unit.type == "Test" else "",
                    "total_time": _fmt_total_time(per_unit if done else 0),
                    "total_time_seconds": per_unit if done else 0,
                }
            )
        return {
            "role": enrollment.role,
            "enrolled_on": _fmt_datetime(enrollment.enrolled_on),
            "enrolled_on_timestamp": str(enrollment.enrolled_on),
            "completion_status": status[1],
            "completion_percentage": str(enrollment.completion_percentage),
            "completed_on": _fmt_datetime(enrollment.completed_on),
            "completed_on_timestamp": _fmt_ts(enrollment.completed_on),
            "expired_on": _fmt_datetime(enrollment.expired_on),
            "expired_on_timestamp": _fmt_ts(enrollment.expired_on),
            "total_time": _fmt_total_time(enrollment.total_time_seconds),
            "total_time_seconds": enrollment.total_time_seconds,
            "units": units,
        }

    def _a_categories(self, params: dict[str, str]) -> Any:
        category_id = _int_param(params, "id")
        rows = [
            {"id": str(cid), "name": name, "price": "$0", "parent_category_id": _fmt_ts(parent, None)}
            for cid, name, parent in CATEGORIES
        ]
        if category_id is None:
            if params:
                raise _ApiError(400, "Invalid arguments provided")
            return rows
        for row in rows:
            if row["id"] == str(category_id):
                courses = [self._course_summary(c) for c in self.courses if c.category_id == category_id]
                return {**row, "courses": courses}
        raise _ApiError(404, "The requested category does not exist")

    def _a_getcustomregistrationfields(self, params: dict[str, str]) -> Any:
        return [
            {
                **field,
                "mandatory": "no",
                "visible_on_reports": "yes",
                "checkbox_status": "off",
                "selective_availability": "no",
                "branch": None,
                "main_domain_availability": None,
                "previous_key": None,
                "order": str(index + 1),
            }
            for index, field in enumerate(CUSTOM_USER_FIELDS)
        ]

    def _a_ratelimit(self, params: dict[str, str]) -> Any:
        status = self.rate_limit_status()
        return {
            "limit": str(status["limit"]),
            "remaining": str(status["remaining"]),
            "reset": str(status["reset"]),
            "formatted_reset": time.strftime("%d/%m/%Y, %H:%M", time.gmtime(status["reset"])),
        }

    def _a_siteinfo(self, params: dict[str, str]) -> Any:
        return {
            "total_users": str(len(self._users)),
            "total_courses": str(len(self._courses)),
            "total_categories": "3",
            "total_groups": "0",
            "total_branches": "0",
            "monthly_active_users": str(len(self._users)),
            "signup_method": "email",
            "signup_type": "direct",
            "verification": "email",
            "paypal_email": "",
            "domain_map": "",
            "date_format": "DDMMYYYY",
            "limits": {"maximum_brances": 1},
        }

    # ------------------------------------------------------------------ payloads

    def _get_user(self, user_id: int) -> SimUser:
        user = self._users.get(user_id)
        if user is None:
            raise _ApiError(404, "The requested user does not exist")
        return user

    def _get_course(self, course_id: int) -> SimCourse:
        course = self._courses.get(course_id)
        if course is None:
            raise _ApiError(404, "The requested course does not exist")
        return course

    def _user_from(self, params: Mapping[str, str]) -> SimUser:
        user_id = _int_param(params, "user_id")
        if user_id is not None:
            return self._get_user(user_id)
        email = params.get("user_email")
        if email:
            for user in self._users.values():
                if user.email.lower() == email.lower():
                    return user
            raise _ApiError(404, "The requested user does not exist")
        raise _ApiError(400, "Invalid arguments provided")

    def _course_from(self, params: Mapping[str, str]) -> SimCourse:
        course_id = _int_param(params, "course_id")
        if course_id is not None:
            return self._get_course(course_id)
        name = params.get("course_name")
        if name:
            for course in self.courses:
                if course.name == name:
                    return course
            raise _ApiError(404, "The requested course does not exist")
        raise _ApiError(400, "Invalid arguments provided")

    def _user_summary(self, user: SimUser) -> dict[str, Any]:
        return {
            "id": str(user.id),
            "login": user.login,
            "first_name": user.first_name,
            "last_name": user.last_name,
            "email": user.email,
            "restrict_email": "1" if user.restrict_email else "0",
            "user_type": user.user_type,
            "timezone": user.timezone,
            "language": user.language,
            "status": user.status,
            "deactivation_date": _fmt_datetime(user.deactivation_date),
            "level": str(user.level),
            "points": str(user.points),
            "credits": str(user.credits),
            "created_on": _fmt_datetime(user.created_on),
            "last_updated": _fmt_datetime(user.last_updated),
            "last_updated_timestamp": str(user.last_updated),
            "avatar": "https://sim.talentlms.com/pages/images/unknown_users.png",
            "bio": user.bio,
            "login_key": f"https://sim.talentlms.com/index/autologin/key:sim{user.id:08d}",
            **{key: user.custom_fields.get(key, "") for key in _CUSTOM_KEYS},
        }

    def _user_detail(self, user: SimUser) -> dict[str, Any]:
        courses = []
        for cid in sorted(self._enrollments):
            enrollment = self._enrollments[cid].get(user.id)
            if enrollment is None:
                continue
            status = _completion_status(enrollment)
            courses.append(
                {
                    "id": str(cid),
                    "name": self._courses[cid].name,
                    "role": enrollment.role,
                    "enrolled_on": _fmt_datetime(enrollment.enrolled_on),
                    "enrolled_on_timestamp": str(enrollment.enrolled_on),
                    "completed_on": _fmt_datetime(enrollment.completed_on),
                    "completed_on_timestamp": _fmt_ts(enrollment.completed_on, None),
                    "completion_status": status[0],
                    "completion_status_formatted": status[2],
                    "completion_percentage": str(enrollment.completion_percentage),
                    "expired_on": _fmt_datetime(enrollment.expired_on),
                    "expired_on_timestamp": _fmt_ts(enrollment.expired_on, None),
                    "total_time": _fmt_total_time(enrollment.total_time_seconds),
                    "total_time_seconds": enrollment.total_time_seconds,
                    "last_accessed_unit_url": (
                        f"https://sim.talentlms.com/course/lastaccessedunit/course_id:{cid},user_id:{user.id}"
                    ),
                }
            )
        return {
            **self._user_summary(user),
            "courses": courses,
            "branches": [],
            "groups": [],
            "certifications": [],
            "badges": [],
        }

    def _course_summary(self, course: SimCourse) -> dict[str, Any]:
        return {
            "id": str(course.id),
            "name": course.name,
            "code": course.code,
            "category_id": "" if course.category_id is None else str(course.category_id),
            "description": course.description,
            "price": course.price,
            "status": course.status,
            "creation_date": _fmt_datetime(course.creation_date),
            "last_update_on": _fmt_datetime(course.last_update_on),
            "creator_id": str(course.creator_id),
            "hide_from_catalog": "1" if course.hide_from_catalog else "0",
            "time_limit": str(course.time_limit),
            "start_datetime": _fmt_ts(course.start_datetime, None),
            "expiration_datetime": _fmt_ts(course.expiration_datetime, None),
            "level": "" if course.level is None else str(course.level),
            "shared": "1" if course.shared else "0",
            "shared_url": "",
            "avatar": course.avatar or "https://sim.talentlms.com/pages/images/unknown_small.png",
            "big_avatar": course.avatar or "https://sim.talentlms.com/pages/images/unknown_small.png",
            "certification": "Classic",
            "certification_duration": "Forever",
        }

    def _course_detail(self, course: SimCourse) -> dict[str, Any]:
        users: list[dict[str, Any]] = []
        for uid, enrollment in sorted(self._enrollments[course.id].items()):
            user = self._users[uid]
            users.append(
                {
                    "id": str(uid),
                    "name": f"{user.first_name[:1]}. {user.last_name}",
                    "role": enrollment.role,
                    "enrolled_on": _fmt_datetime(enrollment.enrolled_on),
                    "enrolled_on_timestamp": str(enrollment.enrolled_on),
                    "completed_on": _fmt_datetime(enrollment.completed_on),
                    "completed_on_timestamp": _fmt_ts(enrollment.completed_on),
                    "completion_percentage": str(enrollment.completion_percentage),
                    "expired_on": _fmt_datetime(enrollment.expired_on),
                    "expired_on_timestamp": _fmt_ts(enrollment.expired_on),
                    "total_time": _fmt_total_time(enrollment.total_time_seconds),
                }
            )
            if enrollment.time_seconds_given:
                users[-1]["total_time_seconds"] = enrollment.total_time_seconds
        units = [_unit_entry(unit) for unit in course.units]
        return {
            **self._course_summary(course),
            "users": users,
            "units": units,
            "rules": ["You must complete all content"],
            "prerequisites": [],
            "prerequisite_rule_sets": [],
        }


def _unit_entry(unit: SimUnit) -> dict[str, Any]:
    """A course detail's ``units`` entry: a Section has its delay, other units their view URL."""
    if unit.type == "Section":
        delay = "" if unit.delay_time is None else str(unit.delay_time)
        return {
            "id": str(unit.id),
            "type": unit.type,
            "name": unit.name,
            "delay_time": delay,
            "aggregated_delay_time": delay,
            "formatted_aggregated_delay_time": "" if unit.delay_time is None else f"{unit.delay_time // 60}h",
        }
    return {
        "id": str(unit.id),
        "type": unit.type,
        "name": unit.name,
        "url": f"sim.talentlms.com/unit/apiview/id:{unit.id}",
    }


def _completion_status(enrollment: SimEnrollment) -> tuple[str, str, str]:
    """(user-detail casing, getuserstatusincourse casing, formatted) — TalentLMS mixes them."""
    if enrollment.completed_on is not None:
        return ("completed", "Completed", "Completed")
    if enrollment.completion_percentage > 0:
        return ("incomplete", "Incomplete", "In Progress")
    return ("not_attempted", "Not attempted", "Not Started")


class _NoFaults(random.Random):
    def random(self) -> float:
        return 1.0


_NO_FAULTS: Final = _NoFaults(0)

_Handler = Callable[[TalentLMSSimulator, dict[str, str]], Any]
_ACTIONS: Final[dict[str, tuple[Iterable[str], _Handler]]] = {
    "users": (("GET",), TalentLMSSimulator._a_users),
    "courses": (("GET",), TalentLMSSimulator._a_courses),
    "createcourse": (("POST",), TalentLMSSimulator._a_createcourse),
    "deletecourse": (("POST",), TalentLMSSimulator._a_deletecourse),
    "addusertocourse": (("POST",), TalentLMSSimulator._a_addusertocourse),
    # TalentLMS mutates on GET here, as the reference's URL pattern shows.
    "removeuserfromcourse": (("GET",), TalentLMSSimulator._a_removeuserfromcourse),
    "getuserstatusincourse": (("GET",), TalentLMSSimulator._a_getuserstatusincourse),
    "categories": (("GET",), TalentLMSSimulator._a_categories),
    "getcustomregistrationfields": (("GET",), TalentLMSSimulator._a_getcustomregistrationfields),
    "ratelimit": (("GET",), TalentLMSSimulator._a_ratelimit),
    "siteinfo": (("GET",), TalentLMSSimulator._a_siteinfo),
}
