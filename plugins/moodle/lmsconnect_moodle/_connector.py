"""The Moodle 5.x connector: web services over the REST protocol.

Every call is ``POST /webservice/rest/server.php?wsfunction=...&moodlewsrestformat=json`` with the token
and the function's parameters PHP-style form-encoded in the body (the token stays out of URLs and logs).
Moodle answers failures with HTTP 200 and an exception body; `MoodleConnector.call` raises those as
lmsconnect errors, so no caller ever mistakes one for data.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import itertools
import logging
import random
import re
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Final, TypeVar

import attrs

from lmsconnect import (
    ActionFailed,
    ActionResult,
    CompleteCourse,
    ConfigurationError,
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
    ProgressionStatus,
    RevisionSkill,
    RevisionStatus,
    Skill,
    UpsertCourses,
    User,
    UserStatus,
)
from lmsconnect.plugin import (
    CheckItem,
    CheckStatus,
    Connector,
    ConnectorSpec,
    HttpClient,
    Response,
    Secret,
    announce_pages,
    announce_total,
    config_field,
    stream_map,
    structure_wire,
    wire_excerpt,
)

from ._capabilities import (
    ALL_FUNCTIONS,
    CAPABILITIES,
    CATEGORIES_FUNCTION,
    DELETED_USERS_FUNCTION,
    REPORT_FUNCTIONS,
    REQUIRED_FUNCTIONS,
    SCORES_FUNCTION,
    SITE_INFO,
)
from ._errors import errorcode_of, is_exception, is_transient, map_exception
from ._params import ParamValue, encode_params
from ._report import ReportReader
from ._wire import (
    CONVERTER,
    MAX_ID,
    MAX_UNIX_TIME,
    CategoryWire,
    CompetencyWire,
    CompletionStatusWire,
    CourseCompetencyWire,
    CoursesByFieldWire,
    CourseWire,
    CreatedCourseWire,
    EnrolledUserWire,
    FrameworkWire,
    GradeItemsWire,
    GradeItemWire,
    ModuleWire,
    OverrideWire,
    SectionWire,
    SiteInfoWire,
    UpdateCoursesWire,
    UserCourseWire,
    UsersWire,
    UserWire,
    WarningWire,
    timestamp,
)

__all__ = [
    "COMPLETION_NOT_TRACKED",
    "NO_GRADED_ACTIVITY",
    "NO_MANUAL_ENROLMENT",
    "MoodleConfig",
    "MoodleConnector",
]

log = logging.getLogger("lmsconnect.moodle")

REST_PATH: Final = "/webservice/rest/server.php"
SITE_COURSE_ID: Final = 1
GUEST_USER_ID: Final = 1

NO_MANUAL_ENROLMENT: Final = "LMS.NO_MANUAL_ENROLMENT"
NO_GRADED_ACTIVITY: Final = "LMS.NO_GRADED_ACTIVITY"
COMPLETION_NOT_TRACKED: Final = "LMS.COMPLETION_NOT_TRACKED"

_READS: Final = re.compile(r"_(get|list|read|count|search|view|data_for)_|_get$|_info$")
_DELETED_BATCH: Final = 100
_COMPETENCY_PAGE: Final = 500
_ENROLLED_PAGE: Final = 1000
# Looking for deleted users in the gaps of the id sequence costs one call per 100 ids; a highest id this far
# above the number of live users is not a real site (or would take over 100,000 calls).
_MAX_DELETED_GAPS: Final = 10_000_000
_PLUGIN_NAME: Final = re.compile(r"[a-z][a-z0-9_]*")  # PARAM_PLUGIN: a module type such as "assign"
_SITE_TIMEZONE: Final = "99"  # a user's timezone when they keep the site's default (core_date)
_SUBSECTION: Final = "mod_subsection"  # the component of a section delegated to a subsection module
_ITEM_TYPES: Final[dict[str, CourseItemType]] = {
    "page": CourseItemType.CONTENT,
    "book": CourseItemType.CONTENT,
    "label": CourseItemType.CONTENT,
    "lesson": CourseItemType.CONTENT,
    "resource": CourseItemType.DOCUMENT,
    "folder": CourseItemType.DOCUMENT,
    "url": CourseItemType.LINK,
    "scorm": CourseItemType.SCORM,
    "h5pactivity": CourseItemType.SCORM,  # H5P packages, tracked through xAPI
    "imscp": CourseItemType.SCORM,  # IMS content packages
    "quiz": CourseItemType.ASSESSMENT,
    "assign": CourseItemType.ASSIGNMENT,
    "workshop": CourseItemType.ASSIGNMENT,  # a peer-assessed assignment
    "feedback": CourseItemType.SURVEY,
    "survey": CourseItemType.SURVEY,
    "questionnaire": CourseItemType.SURVEY,
    "choice": CourseItemType.SURVEY,
    "bigbluebuttonbn": CourseItemType.LIVE_SESSION,
    "subsection": CourseItemType.SECTION,  # Moodle 5's sections inside a section
}
"""Module types (``modname``) by unified type; any other (forum, glossary, wiki, lti, ...) is UNKNOWN."""

T = TypeVar("T")
_REPORT_PAGES_IN_FLIGHT: Final = 4
_ENTRIES_PER_CALL: Final = 8
_COMPLETION_WRITES: Final = 2
"""Grade and override writes of one progression in flight at once: all at once, a real Moodle 5.0 now and
then answers ``dmlwriteexception`` or ``ex_unabletolock`` (they race on the user's completion rows)."""
_VISIBLE_TIMEOUT_S: Final = 180.0
"""wait_until_visible's default: Moodle's cron runs every minute and grade-driven completion needs two runs
of the completion task, so up to ~2 minutes plus the task's own time."""


@attrs.frozen(kw_only=True)
class MoodleConfig:
    base_url: str = config_field(
        help="The Moodle site's URL (its wwwroot)", example="https://moodle.example.org"
    )
    token: Secret = config_field(
        help="Web-service token (Site administration > Server > Web services > Manage tokens)", secret=True
    )
    enrol_role_id: int = config_field(default=5, help="Role id enroll_user assigns (5 is Moodle's student)")
    course_category_id: int = config_field(
        default=1, help="Category id where upsert_courses creates new courses"
    )
    concurrency: int = config_field(default=16, help="Web-service calls in flight at once during reads")
    include_deleted_users: bool = config_field(
        default=False,
        help="Also list users Moodle has deleted (INACTIVE, with Moodle's deletion time as "
        "remote_deleted_at); by default they are left out, so lmsconnect.sync marks them deleted "
        "when they disappear",
    )
    completion_dates: bool = config_field(
        default=True,
        help="Read completed_at for completed progressions (one extra call per completed progression)",
    )
    progressions_via_report: str = config_field(
        default="",
        help="Read progressions from this Report builder custom report (its id or exact name) instead of "
        "per-user calls: a few calls for the whole site, enrolled_at included, times to the minute "
        "(set it up as docs/moodle-setup.md says); empty: off",
    )
    report_timezone: str = config_field(
        default="UTC",
        help="Time zone of the token's user (IANA name): the report's dates are formatted in it",
    )
    report_page_size: int = config_field(
        default=1000, help="Report rows per core_reportbuilder_retrieve_report call"
    )
    course_categories: bool = config_field(
        default=False,
        help="Fill course_revisions.categories with the names of each course's category and its parents "
        "(one more call, core_course_get_categories, per read of course revisions)",
    )
    progression_scores: bool = config_field(
        default=False,
        help="Fill course_progressions.score from each learner's course total grade (one more call, "
        "gradereport_user_get_grade_items, per active progression; not with progressions_via_report)",
    )


def _moodle_id(text: str) -> int | None:
    """The Moodle id written in ``text`` (ASCII digits, 1 to 2**63 - 1), else None."""
    if not (text.isascii() and text.isdigit() and len(text) <= 19):
        return None
    value = int(text)
    return value if 1 <= value <= MAX_ID else None


def _kind(raw: Any) -> str:
    return "null" if raw is None else type(raw).__name__


def _status_of(completion: CompletionStatusWire) -> tuple[ProgressionStatus, dt.datetime | None]:
    """Status and completion time from ``core_completion_get_course_completion_status``."""
    status = completion.completionstatus
    times = [c.timecompleted for c in status.completions if c.complete and c.timecompleted]
    if status.completed:
        # Aggregation 1 ("all") completes with the last criterion, 2 ("any") with the first.
        when = (min(times) if status.aggregation == 2 else max(times)) if times else None
        return ProgressionStatus.COMPLETED, timestamp(when)
    return (ProgressionStatus.IN_PROGRESS if times else ProgressionStatus.ENROLLED), None


class MoodleConnector(Connector[MoodleConfig]):
    """Moodle 5.x through its web services (REST protocol, JSON).

    >>> async with lmsconnect.connect("moodle", base_url="https://moodle.example.org", token=t) as lms:
    ...     async for progression in lms.list(lmsconnect.CourseProgression):
    ...         print(progression.status, progression.completed_at)

    The token's external service must hold the functions listed in docs/moodle-setup.md; ``check()``
    names the missing ones.
    """

    spec = ConnectorSpec(
        slug="moodle",
        name="Moodle",
        config=MoodleConfig,
        api_versions=("5.0", "5.1"),
        simulator="lmsconnect_moodle.testing:MoodleSimulator",
        docs_url="https://moodledev.io/docs/apis/subsystems/external",
    )
    capabilities = CAPABILITIES

    # -- transport -------------------------------------------------------------------------------------

    def __init__(self, config: MoodleConfig, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        # Moodle has no rate limit; this gate is the load a connection puts on the site's PHP workers.
        self._gate = asyncio.Semaphore(max(1, config.concurrency))
        # Courses whose gradebook one grade read has already gone through (see _course_score).
        self._gradebooks_ready: set[int] = set()
        self._gradebook_locks: collections.defaultdict[int, asyncio.Lock] = collections.defaultdict(
            asyncio.Lock
        )
        if config.progressions_via_report:
            self.report_reader()  # a bad report_timezone or report_page_size fails here, at connect()

    def create_http(self) -> HttpClient:
        # Moodle has no rate limit of its own; `concurrency` bounds the load a read puts on the site.
        return HttpClient(
            slug=self.slug,
            base_url=self.config.base_url,
            secrets=[self.config.token.reveal()],
            options=self.http_options,
            # Every call posts to one path: telemetry names it by its function.
            operation_param="wsfunction",
        )

    async def call(
        self,
        function: str,
        params: Mapping[str, ParamValue] | None = None,
        *,
        write: bool = False,
        idempotent: bool | None = None,
        known: bool = True,
    ) -> Any:
        """Call one web-service function; its decoded answer, or the mapped error of its exception body.

        Reads are retried on transport failures and on Moodle's transient database and lock exceptions
        (HTTP 200 bodies such as ``dmlwriteexception``); writes are retried only when ``idempotent`` says
        repeating them is harmless. Each such retry counts in ``stats.retries``.
        """
        if idempotent is None:
            idempotent = not write
        # As many attempts, and the same backoff, as the HTTP layer gives a 5xx.
        options = self.http.options
        attempts = options.max_attempts if idempotent else 1
        for attempt in range(1, attempts + 1):
            async with self._gate:
                response = await self._post(function, params, write=write, idempotent=idempotent)
            try:
                body = response.json()
            except InvalidRemoteResponse:
                raise self.http.raise_mapped(
                    InvalidRemoteResponse(
                        f"{function}: Moodle did not answer JSON (is {self.config.base_url} a Moodle site "
                        "with "
                        "the REST protocol enabled?)",
                        # Scrubbed before it is cut, so no part of the token survives at the cut.
                        vendor_message=self.http.scrub(response.text[:2000])[:200],
                        status=response.status,
                    )
                ) from None
            if is_exception(body):
                error = map_exception(function, body, known=known, scrub=self.http.scrub)
                if is_transient(error) and attempt < attempts:
                    log.info("%s: transient Moodle error %s, retrying", function, errorcode_of(error))
                    self.http.count_retry(errorcode_of(error) or "transient")
                    ceiling = min(options.backoff_max_s, options.backoff_base_s * 2 ** (attempt - 1))
                    await asyncio.sleep(random.uniform(0, ceiling))
                    continue
                raise self.http.raise_mapped(error)
            return body
        raise AssertionError("unreachable")  # pragma: no cover

    # -- what Moodle answers: validated where it enters ---------------------------------------------------

    def _wire(self, raw: Any, cls: type[T], where: str) -> T:
        """``raw`` as the wire record ``cls``, or InvalidRemoteResponse naming ``where`` and the field."""
        return structure_wire(CONVERTER, raw, cls, where=where, connector=self.slug, scrub=self.http.scrub)

    def _items(self, raw: Any, cls: type[T], where: str) -> list[tuple[T, dict[str, Any]]]:
        """Each entry of a list answer as ``cls``, paired with the entry as Moodle sent it (remote_data)."""
        if not isinstance(raw, list):
            raise self._invalid(where, f"expected a list, got {_kind(raw)}", raw)
        return [(self._wire(item, cls, f"{where}[{index}]"), item) for index, item in enumerate(raw)]

    def _invalid(
        self, where: str, problem: str, raw: Any = None, *, vendor: str | None = None, hint: str | None = None
    ) -> InvalidRemoteResponse:
        got = f"; got {wire_excerpt(raw, self.http.scrub)}" if raw is not None else ""
        error = InvalidRemoteResponse(
            f"{where}: {problem}{got}",
            connector=self.slug,
            # Scrubbed before it is trimmed, so no part of the token survives at the cut.
            vendor_message=self.http.scrub(vendor[:2000]) if vendor else None,
            hint=hint,
        )
        self.http.raise_mapped(error)
        return error

    def _unique(self, where: str, seen: set[int], value: int) -> None:
        # Moodle never lists a record twice in one answer; a repeat is a repeated page or a wrong answer.
        if value in seen:
            raise self._invalid(where, f"id {value} appears twice; a list with repeats is not a complete one")
        seen.add(value)

    def _no_warnings(self, where: str, warnings: Sequence[WarningWire]) -> None:
        """A read whose answer carries warnings may have left records out: it is not a complete read."""
        if warnings:
            first = warnings[0]
            raise self._invalid(
                where,
                f"Moodle answered with {len(warnings)} warning(s), so records may be missing; the answer is "
                "not taken as complete",
                vendor=f"{first.warningcode}: {first.message}",
            )

    async def _post(
        self, function: str, params: Mapping[str, ParamValue] | None, *, write: bool, idempotent: bool
    ) -> Response:
        form = [("wstoken", self.config.token.reveal()), *encode_params(params or {})]
        return await self.http.request(
            "POST",
            REST_PATH,
            params={"wsfunction": function, "moodlewsrestformat": "json"},
            data=form,
            idempotent=idempotent,
            write=write,
        )

    async def handle_passthrough(self, method: str, path: str, **kwargs: Any) -> Response:
        """``passthrough("POST", "<wsfunction>", params={...})`` calls any web-service function.

        Nested ``params`` are encoded PHP-style. An exception body raises the mapped error, as for the
        connector's own calls. A ``path`` starting with ``/`` is sent as a plain request instead.
        """
        if path.startswith("/"):
            return await self.http.request(method, path, **kwargs)
        # Unknown functions may write: only names that read are retried, unless the caller says otherwise.
        write = bool(kwargs.pop("write", not _READS.search(path)))
        idempotent = bool(kwargs.pop("idempotent", not write))
        strict = bool(kwargs.pop("raise_for_status", True))
        given = {k: v for k, v in kwargs.items() if v is not None}
        params: Mapping[str, ParamValue] = {}
        for name in ("params", "data", "json_body"):
            if name in given:
                params = given.pop(name)
                break
        if given:
            raise InvalidInput(
                "passthrough of a wsfunction takes params (nested, encoded PHP-style), write, idempotent "
                f"and raise_for_status; not {', '.join(given)}",
                field="passthrough",
            )
        async with self._gate:
            response = await self._post(path, params, write=write, idempotent=idempotent)
        try:
            body = response.json()
        except InvalidRemoteResponse:
            return response
        if strict and is_exception(body):
            raise self.http.raise_mapped(
                map_exception(path, body, known=path in ALL_FUNCTIONS, scrub=self.http.scrub)
            )
        return response

    def _url(self, path: str) -> str:
        return f"{self.config.base_url.rstrip('/')}{path}"

    # -- users -----------------------------------------------------------------------------------------

    async def read_users(self) -> AsyncIterator[User]:
        function = "core_user_get_users"
        # Moodle's "%" LIKE on email matches every account that is not deleted, in one call.
        answer = self._wire(
            await self.call(function, {"criteria": [{"key": "email", "value": "%"}]}), UsersWire, function
        )
        self._no_warnings(function, answer.warnings)
        users = self._items(answer.users, UserWire, f"{function} users")
        seen: set[int] = set()
        for wire, _ in users:
            self._unique(f"{function} users", seen, wire.id)
        if GUEST_USER_ID not in seen:
            # Every site has the guest account (it cannot be deleted, and its email root@localhost matches
            # "%"): an answer without it is not the list of all users, so nothing may be deleted from it.
            raise self._invalid(
                function,
                f"the answer for every user (email LIKE '%') lists {len(seen)} users but not the guest "
                f"account (id {GUEST_USER_ID}) every Moodle site has, so it is not a complete list of users",
                hint="If the token's user cannot see user profiles site-wide, give it "
                "moodle/user:viewdetails and moodle/user:viewalldetails (docs/moodle-setup.md, step 3); "
                "otherwise something between lmsconnect and Moodle changed the answer",
            )
        if not self.config.include_deleted_users:
            # The one answer lists them all (deleted accounts, looked for below, are not counted ahead).
            announce_total("users", len(seen) - 1)
        for wire, raw in users:
            if wire.id != GUEST_USER_ID:
                yield self._user(wire, raw, function)
        if not self.config.include_deleted_users:
            return
        # Deleted accounts keep their ids; look for them in the gaps and just past the highest live id
        # (Moodle silently drops ids that were never used).
        top = max(seen) + _DELETED_BATCH
        if top - len(seen) > _MAX_DELETED_GAPS:
            raise self._invalid(
                function,
                f"the highest user id ({max(seen)}) is far above the {len(seen)} users listed; looking for "
                f"deleted users in {top - len(seen):,} unused ids would take more than "
                f"{_MAX_DELETED_GAPS // _DELETED_BATCH:,} calls",
                hint="Read users with include_deleted_users=False",
            )
        gaps = (i for i in range(GUEST_USER_ID + 1, top + 1) if i not in seen)
        while batch := list(itertools.islice(gaps, _DELETED_BATCH)):
            asked = set(batch)
            found = self._items(
                await self.call(DELETED_USERS_FUNCTION, {"field": "id", "values": batch}),
                UserWire,
                DELETED_USERS_FUNCTION,
            )
            for wire, raw in found:
                # A by-id query answers only ids it was asked for, each once.
                if wire.id not in asked:
                    raise self._invalid(
                        DELETED_USERS_FUNCTION, f"answered user id {wire.id}, which was not asked for"
                    )
                asked.discard(wire.id)
                yield self._user(wire, raw, DELETED_USERS_FUNCTION, deleted=True)

    def _user(self, wire: UserWire, raw: Mapping[str, Any], source: str, *, deleted: bool = False) -> User:
        email = wire.email or None
        deleted_at = None
        if deleted:
            # delete_user() renames the account to "<email>.<unix time>" and hashes the email.
            head, _, stamp = wire.username.rpartition(".")
            if stamp.isascii() and stamp.isdigit() and len(stamp) <= 12 and int(stamp) <= MAX_UNIX_TIME:
                deleted_at = timestamp(int(stamp))
                email = head if "@" in head else None
            else:
                email = None
        custom = {f.shortname: f.value for f in wire.customfields if f.shortname and f.value is not None}
        return User(
            id=self.make_id("users", wire.id),
            remote_id=str(wire.id),
            first_name=wire.firstname or None,
            last_name=wire.lastname or None,
            work_email=email,
            status=UserStatus.INACTIVE if wire.suspended or deleted else UserStatus.ACTIVE,
            remote_deleted_at=deleted_at,
            # A deleted account's username is Moodle's "<email>.<time>", not the name the person had.
            username=(wire.username or None) if not deleted else None,
            locale=wire.lang or None,
            # "99" is "the site's default time zone", which no function the token is sure to hold names.
            timezone=wire.timezone if wire.timezone not in ("", _SITE_TIMEZONE) else None,
            custom_fields=custom or None,
            remote_data={source: dict(raw)},
        )

    # -- courses and revisions -------------------------------------------------------------------------

    async def _courses(self) -> list[tuple[CourseWire, dict[str, Any]]]:
        """Every course but the site course, each with the entry as Moodle sent it."""
        function = "core_course_get_courses"
        courses = self._items(await self.call(function), CourseWire, function)
        seen: set[int] = set()
        for wire, _ in courses:
            self._unique(function, seen, wire.id)
            if wire.format == "site" and wire.id != SITE_COURSE_ID:
                raise self._invalid(
                    function, f"course {wire.id} has the site format, which only the site course (id 1) has"
                )
        if SITE_COURSE_ID not in seen:
            # Without ids, Moodle lists every course it has, the site course always among them: an answer
            # without it is not the list of all courses, so nothing may be deleted from it.
            raise self._invalid(
                function,
                f"the answer for every course lists {len(seen)} courses but not the site course (id 1) that "
                "Moodle always includes, so it is not a complete list of courses",
            )
        return [(wire, raw) for wire, raw in courses if wire.id != SITE_COURSE_ID]

    async def read_courses(self) -> AsyncIterator[Course]:
        courses = await self._courses()
        announce_total("courses", len(courses))  # one call lists every course
        for wire, raw in courses:
            yield Course(
                id=self.make_id("courses", wire.id),
                remote_id=str(wire.id),
                origin_id=wire.idnumber or None,
                remote_created_at=timestamp(wire.timecreated),
                remote_data={"core_course_get_courses": raw},
            )

    async def read_course_revisions(self) -> AsyncIterator[CourseRevision]:
        courses = await self._courses()
        announce_total("course_revisions", len(courses))
        paths = await self._category_paths() if self.config.course_categories else None
        for wire, raw in courses:
            categories = None
            if paths is not None:
                categories = paths.get(wire.categoryid)
                if categories is None:
                    raise self._invalid(
                        "core_course_get_categories",
                        f"course {wire.id} is in category {wire.categoryid}, which the list of every "
                        "category does not have",
                    )
            yield self._revision(wire, raw, categories)

    async def _category_paths(self) -> dict[int, tuple[str, ...]]:
        """Each category's name and its parents', outermost first (``core_course_get_categories``)."""
        function = CATEGORIES_FUNCTION
        listed = self._items(await self.call(function), CategoryWire, function)
        seen: set[int] = set()
        for wire, _ in listed:
            self._unique(function, seen, wire.id)
        names: dict[int, str] = {wire.id: wire.name for wire, _ in listed}
        paths: dict[int, tuple[str, ...]] = {}
        for wire, _ in listed:
            steps = [part for part in wire.path.split("/") if part]
            ids = [_moodle_id(part) for part in steps]
            # A category's path lists its ancestors' ids and then its own: anything else is not Moodle's.
            if not ids or ids[-1] != wire.id or any(i not in names for i in ids):
                raise self._invalid(
                    function,
                    f"category {wire.id} has the path {wire.path[:80]!r}, which does not end with its own "
                    "id after ids of listed categories",
                )
            paths[wire.id] = tuple(names[i] for i in ids if i is not None)
        return paths

    def _revision(
        self, wire: CourseWire, raw: Mapping[str, Any], categories: tuple[str, ...] | None = None
    ) -> CourseRevision:
        return CourseRevision(
            id=self.make_id("course_revisions", wire.id),
            remote_id=str(wire.id),
            course_id=self.make_id("courses", wire.id),
            title=wire.fullname or wire.shortname or None,
            description=wire.summary or None,
            status=RevisionStatus.ACTIVE if wire.visible else RevisionStatus.INACTIVE,
            remote_created_at=timestamp(wire.timecreated),
            remote_url=self._url(f"/course/view.php?id={wire.id}"),
            code=wire.shortname or None,
            # An empty lang is "no forced language": each learner sees the course in their own.
            languages=(wire.lang,) if wire.lang else None,
            categories=categories,
            remote_updated_at=timestamp(wire.timemodified),
            remote_data={"core_course_get_courses": dict(raw)},
        )

    # -- skills ----------------------------------------------------------------------------------------

    async def read_skills(self) -> AsyncIterator[Skill]:
        function = "core_competency_list_competency_frameworks"
        frameworks = self._items(
            await self.call(
                function,
                {
                    "sort": "id",
                    "order": "ASC",
                    "skip": 0,
                    "limit": 0,
                    "context": {"contextid": 1},
                    "includes": "children",
                    "onlyvisible": 0,
                    "query": "",
                },
            ),
            FrameworkWire,
            function,
        )
        seen_frameworks: set[int] = set()
        for framework, _ in frameworks:
            self._unique(function, seen_frameworks, framework.id)
        listing = "core_competency_list_competencies"
        seen: set[int] = set()
        for framework, framework_raw in frameworks:
            skip = 0
            while True:
                page = self._items(
                    await self.call(
                        listing,
                        {
                            "filters": [{"column": "competencyframeworkid", "value": framework.id}],
                            "sort": "id",
                            "order": "ASC",
                            "skip": skip,
                            "limit": _COMPETENCY_PAGE,
                        },
                    ),
                    CompetencyWire,
                    listing,
                )
                for wire, raw in page:
                    # Ids are unique across frameworks: a repeat is a page that did not advance.
                    self._unique(listing, seen, wire.id)
                    if wire.competencyframeworkid != framework.id:
                        raise self._invalid(
                            listing,
                            f"asked for the competencies of framework {framework.id}, answered competency "
                            f"{wire.id} of framework {wire.competencyframeworkid}",
                        )
                    yield Skill(
                        id=self.make_id("skills", wire.id),
                        remote_id=str(wire.id),
                        name=wire.shortname or wire.idnumber or None,
                        remote_created_at=timestamp(wire.timecreated),
                        remote_data={
                            "core_competency_list_competencies": raw,
                            "core_competency_list_competency_frameworks": framework_raw,
                        },
                    )
                if len(page) < _COMPETENCY_PAGE:
                    break
                skip += len(page)

    async def read_revision_skills(self) -> AsyncIterator[RevisionSkill]:
        function = "core_competency_list_course_competencies"

        async def links(courseid: int) -> tuple[int, list[tuple[CourseCompetencyWire, dict[str, Any]]]]:
            found = self._items(await self.call(function, {"id": courseid}), CourseCompetencyWire, function)
            seen: set[int] = set()
            for wire, _ in found:
                self._unique(function, seen, wire.coursecompetency.id)
                if wire.coursecompetency.courseid != courseid:
                    raise self._invalid(
                        function,
                        f"asked for the competencies of course {courseid}, answered a link of course "
                        f"{wire.coursecompetency.courseid}",
                    )
            return courseid, found

        courseids = [wire.id for wire, _ in await self._courses()]
        done = 0
        announce_pages("revision_skills", done, len(courseids))  # one call per course
        async for courseid, found in stream_map(courseids, links, concurrency=self.config.concurrency):
            done += 1
            announce_pages("revision_skills", done, len(courseids))
            for wire, raw in found:
                link = wire.coursecompetency
                yield RevisionSkill(
                    id=self.make_id("revision_skills", link.id),
                    remote_id=str(link.id),
                    course_revision_id=self.make_id("course_revisions", courseid),
                    skill_id=self.make_id("skills", link.competencyid),
                    remote_data={"core_competency_list_course_competencies": raw},
                )

    # -- course content ---------------------------------------------------------------------------------

    async def read_course_items(self) -> AsyncIterator[CourseItem]:
        """Sections and their modules, one ``core_course_get_contents`` call per course."""
        function = "core_course_get_contents"

        async def contents(courseid: int) -> tuple[int, list[tuple[SectionWire, dict[str, Any]]]]:
            answer = await self.call(function, {"courseid": courseid})
            return courseid, self._items(answer, SectionWire, f"{function} (course {courseid})")

        courseids = [wire.id for wire, _ in await self._courses()]
        async for courseid, sections in stream_map(courseids, contents, concurrency=self.config.concurrency):
            for item in self._course_items(courseid, sections):
                yield item

    def _course_items(
        self, courseid: int, sections: list[tuple[SectionWire, dict[str, Any]]]
    ) -> list[CourseItem]:
        """A course's items: its sections in order (top level), each section's modules in order within it,
        and the modules of a subsection within the subsection. What students cannot see (a hidden section
        or module, ``visible`` 0) is left out, with whatever it holds."""
        where = f"core_course_get_contents (course {courseid})"
        section_ids: set[int] = set()
        module_ids: set[int] = set()
        delegated: dict[int, tuple[SectionWire, dict[str, Any]]] = {}
        for section, raw in sections:
            self._unique(where, section_ids, section.id)
            for module in section.modules:
                self._unique(where, module_ids, module.id)
            if section.component == _SUBSECTION and section.itemid is not None:
                delegated[section.itemid] = (section, raw)
        revision = self.make_id("course_revisions", courseid)
        items: list[CourseItem] = []

        def add(remote: str, parent: str | None, position: int, raw: Mapping[str, Any], **fields: Any) -> str:
            item = CourseItem(
                id=self.make_id("course_items", remote),
                remote_id=remote,
                course_revision_id=revision,
                parent_id=parent,
                position=position,
                remote_data={"core_course_get_contents": dict(raw)},
                **fields,
            )
            items.append(item)
            return item.id

        def modules(section: SectionWire, raw: Mapping[str, Any], parent: str) -> None:
            listed = zip(section.modules, raw.get("modules") or [], strict=True)
            shown = [(m, r) for m, r in listed if m.visible]
            for position, (module, module_raw) in enumerate(shown):
                if not _PLUGIN_NAME.fullmatch(module.modname):
                    raise self._invalid(where, f"module {module.id} has no module type ('modname')")
                kind = _ITEM_TYPES.get(module.modname, CourseItemType.UNKNOWN)
                made = add(
                    f"module:{module.id}",
                    parent,
                    position,
                    module_raw,
                    type=kind,
                    remote_type=module.modname,
                    title=module.name or None,
                    # An activity without completion tracking cannot be a completion criterion.
                    is_required=False if not module.completion else None,
                )
                inner = delegated.get(module.instance or 0) if module.modname == "subsection" else None
                if inner is not None and inner[0].visible:
                    modules(inner[0], inner[1], made)

        top = [(s, r) for s, r in sections if s.component != _SUBSECTION and s.visible]
        for position, (section, raw) in enumerate(top):
            made = add(
                f"section:{section.id}",
                None,
                position,
                {k: v for k, v in raw.items() if k != "modules"},
                type=CourseItemType.SECTION,
                remote_type="section",
                title=section.name or None,
            )
            modules(section, raw, made)
        return items

    # -- progressions ----------------------------------------------------------------------------------

    def report_reader(self) -> ReportReader:
        """The reader of the custom report named by ``progressions_via_report``."""
        return ReportReader(
            call=self.call,
            make_id=self.make_id,
            wanted=self.config.progressions_via_report,
            zone=self.config.report_timezone,
            page_size=self.config.report_page_size,
            concurrency=min(self.config.concurrency, _REPORT_PAGES_IN_FLIGHT),
            connector=self.slug,
        )

    async def _enrolled_page(
        self, courseid: int, only: str | None, start: int
    ) -> list[tuple[EnrolledUserWire, dict[str, Any]]]:
        function = "core_enrol_get_enrolled_users"
        options: list[dict[str, ParamValue]] = [
            {"name": "userfields", "value": "id,roles,enrolledcourses"},
            {"name": "limitfrom", "value": start},
            {"name": "limitnumber", "value": _ENROLLED_PAGE},
        ]
        if only is not None:
            options.append({"name": only, "value": 1})
        return self._items(
            await self.call(function, {"courseid": courseid, "options": options}), EnrolledUserWire, function
        )

    async def _users_courses(self, userid: int) -> dict[int, tuple[UserCourseWire, dict[str, Any]]]:
        function = "core_enrol_get_users_courses"
        listed = self._items(
            await self.call(function, {"userid": userid, "returnusercount": 0}), UserCourseWire, function
        )
        seen: set[int] = set()
        for wire, _ in listed:
            self._unique(f"{function} (user {userid})", seen, wire.id)
        return {wire.id: (wire, raw) for wire, raw in listed}

    async def read_course_progressions(self) -> AsyncIterator[CourseProgression]:
        if self.config.progressions_via_report:
            async for progression in self.report_reader().progressions():
                yield progression
            return
        # Streamed with bounded state: no map of who is enrolled where is kept. Each enrolled user comes
        # with `enrolledcourses`, the courses where Moodle counts their enrolment as active (the very list
        # core_enrol_get_users_courses answers), so one course can say alone whether an enrolment is
        # active, and whether it is the user's first such course: there, and only there, the user's
        # completion flags for all those courses are read in one call.
        courses: dict[int, CourseWire] = {wire.id: wire for wire, _ in await self._courses()}
        concurrency = self.config.concurrency
        # A hidden course leaves its students out of their active lists, so there the listing itself says
        # which enrolments are active (two listings) where a visible course needs one.
        listings = [
            (course, only)
            for course in courses.values()
            for only in ((None,) if course.visible else ("onlyactive", "onlysuspended"))
        ]
        Page = list[tuple[EnrolledUserWire, dict[str, Any]]]
        Entry = tuple[CourseWire, str | None, EnrolledUserWire, dict[str, Any]]

        async def first_page(listing: tuple[CourseWire, str | None]) -> tuple[CourseWire, str | None, Page]:
            course, only = listing
            return course, only, await self._enrolled_page(course.id, only, 0)

        announce_pages("course_progressions", 0, len(listings))  # a listing per course (two if hidden)

        async def entries() -> AsyncIterator[Entry]:
            done = 0
            async for course, only, page in stream_map(listings, first_page, concurrency=concurrency):
                done += 1
                announce_pages("course_progressions", done, len(listings))
                where = f"core_enrol_get_enrolled_users (course {course.id})"
                seen: set[int] = set()  # ids only: a user listed twice is a page that did not advance
                start = 0
                while True:
                    for wire, raw in page:
                        self._unique(where, seen, wire.id)
                        yield course, only, wire, raw
                    if len(page) < _ENROLLED_PAGE:
                        break
                    start += len(page)
                    page = await self._enrolled_page(course.id, only, start)

        async def progressions_of(entry: Entry) -> list[CourseProgression]:
            return await self._enrolment_progressions(courses, *entry)

        # Most enrolments need no call (read with their user's first course, or DROPPED), so more of them
        # are in flight than calls: the gate in `call` keeps the calls to `concurrency`.
        async for batch in stream_map(
            entries(), progressions_of, concurrency=concurrency * _ENTRIES_PER_CALL
        ):
            for progression in batch:
                yield progression

    async def _enrolment_progressions(
        self,
        courses: Mapping[int, CourseWire],
        course: CourseWire,
        only: str | None,
        wire: EnrolledUserWire,
        raw: Mapping[str, Any],
    ) -> list[CourseProgression]:
        courseid, userid = course.id, wire.id
        enrolment = {k: v for k, v in raw.items() if k != "enrolledcourses"}
        active: list[int] = [c.id for c in wire.enrolledcourses or []]
        if courseid in active:
            if min((c for c in active if c in courses), default=courseid) != courseid:
                return []  # read with the user's first active course
            return await self._user_progressions(courses, userid, active)
        if only == "onlyactive":
            # Active, in a hidden course the user may not see: Moodle's per-user list leaves it out.
            return [await self._progression(course, userid, enrolment, None, active=True)]
        # No active course at all, or a site that hides users' course lists from the token's user
        # (hiddenuserfields "mycourses"): the per-user list tells which.
        if only is None and wire.enrolledcourses is None and courseid in await self._users_courses(userid):
            raise ConfigurationError(
                "core_enrol_get_enrolled_users does not show the token's user which courses users are "
                "enrolled in (enrolledcourses): give it moodle/user:viewhiddendetails, or take "
                "'mycourses' out of Site administration > Users > Permissions > User policies > Hide "
                "user fields (hiddenuserfields)",
                connector=self.slug,
            )
        # Not active (suspended, disabled method, or outside its dates): Moodle no longer counts it.
        return [self._dropped(courseid, userid, enrolment)]

    async def _user_progressions(
        self, courses: Mapping[int, CourseWire], userid: int, active: list[int]
    ) -> list[CourseProgression]:
        """All of a user's active enrolments: Moodle's completed flag and progress in one call, then the
        completion detail where it is needed."""
        listed = await self._users_courses(userid)
        # Only the courses the listing said were active: any other is read with its own course's row. One
        # that stopped being active between the two calls is read on its own.
        by_course = {cid: entry for cid, entry in listed.items() if cid in courses and cid in active}
        unlisted = sorted(c for c in set(active) - set(by_course) if c in courses)
        return list(
            await asyncio.gather(
                *(
                    self._progression(courses[cid], userid, None, entry)
                    for cid, entry in sorted(by_course.items())
                ),
                *(self._progression(courses[cid], userid, None, None) for cid in unlisted),
            )
        )

    def _dropped(self, courseid: int, userid: int, enrolment: Mapping[str, Any]) -> CourseProgression:
        remote = f"{courseid}:{userid}"
        return CourseProgression(
            id=self.make_id("course_progressions", remote),
            remote_id=remote,
            user_id=self.make_id("users", userid),
            course_revision_id=self.make_id("course_revisions", courseid),
            status=ProgressionStatus.DROPPED,
            remote_data={"core_enrol_get_enrolled_users": dict(enrolment)},
        )

    async def _progression(
        self,
        course: CourseWire,
        userid: int,
        enrolment: Mapping[str, Any] | None,
        listed: tuple[UserCourseWire, dict[str, Any]] | None,
        *,
        active: bool = False,
    ) -> CourseProgression:
        courseid = course.id
        remote = f"{courseid}:{userid}"
        data: dict[str, Any] = {}
        if enrolment is not None:
            data["core_enrol_get_enrolled_users"] = dict(enrolment)
        status = ProgressionStatus.ENROLLED
        completed_at: dt.datetime | None = None
        progress: float | None = None
        last_access: dt.datetime | None = None
        tracked = bool(course.enablecompletion)
        if listed is not None:
            wire, data["core_enrol_get_users_courses"] = listed
            # The share of tracked activities complete; null where completion is not tracked for them.
            progress = wire.progress if tracked and wire.completionusertracked else None
            last_access = timestamp(wire.lastaccess)
            if not wire.completionusertracked or not tracked:
                status = ProgressionStatus.ENROLLED
            elif wire.completed:
                status = ProgressionStatus.COMPLETED
            elif wire.progress:
                status = ProgressionStatus.IN_PROGRESS
        need_detail = tracked and (
            listed is None or (status is ProgressionStatus.COMPLETED and self.config.completion_dates)
        )
        if need_detail:
            try:
                raw, detail = await self._completion_status(courseid, userid)
            except LMSConnectError as exc:
                code = errorcode_of(exc)
                if code == "usernotenroled" and listed is None and not active:
                    # Enrolled, but Moodle does not count the enrolment as active (suspended or dated).
                    status = ProgressionStatus.DROPPED
                elif code not in ("usernotenroled", "nocriteriaset", "cannotviewreport"):
                    raise
            else:
                data["core_completion_get_course_completion_status"] = raw
                detail_status, completed_at = _status_of(detail)
                if listed is None:
                    status = detail_status
        score = None
        if self.config.progression_scores and status is not ProgressionStatus.DROPPED:
            score = await self._course_score(courseid, userid, data)
        return CourseProgression(
            id=self.make_id("course_progressions", remote),
            remote_id=remote,
            user_id=self.make_id("users", userid),
            course_revision_id=self.make_id("course_revisions", courseid),
            status=status,
            completed_at=completed_at,
            progress=progress,
            last_activity_at=last_access,
            score=score,
            remote_data=data,
        )

    async def _grade_items(self, courseid: int, userid: int) -> Any:
        """One ``gradereport_user_get_grade_items`` answer. Moodle creates a course's grade category and
        course total on the first gradebook read; concurrent first reads of one course raced on the real
        site and the losers answered `morethanonerecordinfetch`. So the first read of each course goes
        alone, the rest in parallel."""
        params = {"courseid": courseid, "userid": userid}
        if courseid not in self._gradebooks_ready:
            async with self._gradebook_locks[courseid]:
                if courseid not in self._gradebooks_ready:
                    raw = await self.call(SCORES_FUNCTION, params)
                    self._gradebooks_ready.add(courseid)
                    return raw
        return await self.call(SCORES_FUNCTION, params)

    async def _course_score(self, courseid: int, userid: int, data: dict[str, Any]) -> float | None:
        """The user's course total as a percentage of its range (``gradereport_user_get_grade_items``), None
        while ungraded. A total above the maximum (sites may allow grades over it, ``unlimitedgrades``)
        is left out with a warning rather than stretched onto 0-100."""
        function = SCORES_FUNCTION
        raw = await self._grade_items(courseid, userid)
        report = self._wire(raw, GradeItemsWire, function)
        self._no_warnings(function, report.warnings)
        totals = [
            item
            for usergrades in report.usergrades
            if (usergrades.courseid, usergrades.userid) == (courseid, userid)
            for item in usergrades.gradeitems
            if item.itemtype == "course"
        ]
        if len(report.usergrades) != 1 or len(totals) != 1:
            raise self._invalid(
                function,
                f"asked for the grades of user {userid} in course {courseid}, which have one course total; "
                f"answered {len(report.usergrades)} users' grades with {len(totals)} course totals for them",
            )
        data[function] = raw
        total = totals[0]
        if total.graderaw is None or total.grademax <= total.grademin:
            return None
        score = (total.graderaw - total.grademin) / (total.grademax - total.grademin) * 100
        if not 0 <= score <= 100:
            log.warning(
                "%s: the course total of user %s in course %s is %s, outside its range %s..%s; no score",
                function,
                userid,
                courseid,
                total.graderaw,
                total.grademin,
                total.grademax,
            )
            return None
        return round(score, 5)

    async def _completion_status(self, courseid: int, userid: int) -> tuple[Any, CompletionStatusWire]:
        """``core_completion_get_course_completion_status`` as Moodle sent it and as a checked record."""
        function = "core_completion_get_course_completion_status"
        raw = await self.call(function, {"courseid": courseid, "userid": userid})
        wire = self._wire(raw, CompletionStatusWire, function)
        self._no_warnings(function, wire.warnings)
        return raw, wire

    # -- actions: courses ------------------------------------------------------------------------------

    async def _course_by_idnumber(self, idnumber: str) -> CourseWire | None:
        function = "core_course_get_courses_by_field"
        answer = self._wire(
            await self.call(function, {"field": "idnumber", "value": idnumber}), CoursesByFieldWire, function
        )
        self._no_warnings(function, answer.warnings)
        found = [wire for wire, _ in self._items(answer.courses, CourseWire, f"{function} courses")]
        # Moodle keeps course ID numbers unique, and a by-field query answers only what matches it: anything
        # else is a wrong answer, which must not make upsert update (or create) the wrong course.
        if any(wire.idnumber != idnumber for wire in found) or len(found) > 1:
            raise self._invalid(
                function,
                f"asked for the course with ID number {idnumber!r}, answered {len(found)} course(s) with "
                f"ID numbers {sorted({wire.idnumber for wire in found})!r:.200}",
            )
        if found and found[0].id == SITE_COURSE_ID:
            raise InvalidInput(
                f"items.origin_id: {idnumber!r} is the ID number of the site course (id 1), not of a course",
                field="items.origin_id",
            )
        return found[0] if found else None

    @staticmethod
    def _lang(languages: Sequence[str] | None) -> str | None:
        if not languages:
            return None
        # Moodle language packs are named ll or ll_cc ("pt_br"); BCP 47 region tags map onto them.
        language, _, region = languages[0].partition("-")
        return f"{language}_{region.lower()}" if region else language

    async def handle_upsert_courses(self, action: UpsertCourses) -> ActionResult:
        async def one(item: Any) -> ItemResult:
            try:
                return await self._upsert_one(item)
            except LMSConnectError as exc:
                return ItemResult(
                    key=item.origin_id,
                    status=ItemStatus.FAILED,
                    error=ItemError(code=exc.code, message=str(exc)),
                )

        results = [r async for r in stream_map(action.items, one, concurrency=4)]
        return ActionResult(action="upsert_courses", items=tuple(results))

    async def _upsert_one(self, item: Any) -> ItemResult:
        course = item.course
        wanted: dict[str, Any] = {"fullname": course.title}
        if course.description is not None:
            wanted["summary"] = course.description
            wanted["summaryformat"] = 1
        lang = self._lang(course.languages)
        if lang is not None:
            wanted["lang"] = lang
        try:
            return await self._write_course(item, wanted)
        except InvalidInput as exc:
            if errorcode_of(exc) == "errorinvalidparam" and lang is not None:
                exc.message = (
                    f"the language pack {lang!r} is not installed on the Moodle site ({exc.message})"
                )
                exc.field = "items.course.languages"
            raise

    async def _write_course(self, item: Any, wanted: dict[str, Any]) -> ItemResult:
        existing = await self._course_by_idnumber(item.origin_id)
        if existing is None:
            function = "core_course_create_courses"
            created = self._items(
                await self.call(
                    function,
                    {
                        "courses": [
                            {
                                **wanted,
                                "shortname": item.origin_id,
                                "idnumber": item.origin_id,
                                "categoryid": self.config.course_category_id,
                                "enablecompletion": 1,
                            }
                        ]
                    },
                    write=True,
                ),
                CreatedCourseWire,
                function,
            )
            if len(created) != 1:
                raise self._invalid(function, f"created one course, answered {len(created)} entries")
            remote = str(created[0][0].id)
            return ItemResult(
                key=item.origin_id,
                status=ItemStatus.CREATED,
                remote_id=remote,
                id=self.make_id("courses", remote),
            )
        remote = str(existing.id)
        current = {"fullname": existing.fullname, "summary": existing.summary, "lang": existing.lang}
        changes = {k: v for k, v in wanted.items() if k != "summaryformat" and current.get(k) != v}
        if not changes:
            return ItemResult(
                key=item.origin_id,
                status=ItemStatus.UNCHANGED,
                remote_id=remote,
                id=self.make_id("courses", remote),
            )
        if "summary" in changes:
            changes["summaryformat"] = 1
        await self._update_course({"id": existing.id, **changes}, field="items")
        return ItemResult(
            key=item.origin_id,
            status=ItemStatus.UPDATED,
            remote_id=remote,
            id=self.make_id("courses", remote),
            detail="changed: " + ", ".join(sorted(changes)),
        )

    async def _update_course(self, course: Mapping[str, ParamValue], *, field: str) -> None:
        """``core_course_update_courses`` for one course; its warnings raise the mapped error."""
        function = "core_course_update_courses"
        answer = self._wire(
            await self.call(function, {"courses": [course]}, write=True, idempotent=True),
            UpdateCoursesWire,
            function,
        )
        # Batch updates report per-item problems as warnings and still answer normally.
        for warning in answer.warnings:
            error = map_exception(
                function,
                {"exception": "warning", "errorcode": warning.warningcode, "message": warning.message},
                scrub=self.http.scrub,
            )
            if isinstance(error, InvalidInput):
                error.field = field
            raise self.http.raise_mapped(error)

    async def handle_deactivate_course(self, action: DeactivateCourse) -> ActionResult:
        remote = self.remote_id("courses", action.course_id, field="course_id")
        courseid = self._int(remote, "course_id")
        if courseid == SITE_COURSE_ID:
            raise InvalidInput("course_id: the site course (id 1) is not a course", field="course_id")
        await self._update_course({"id": courseid, "visible": 0}, field="course_id")
        return ActionResult.one(
            "deactivate_course",
            key=action.course_id,
            status=ItemStatus.UPDATED,
            id=self.make_id("courses", remote),
            remote_id=remote,
            detail="hidden (visible=0); restore with core_course_update_courses visible=1",
        )

    async def restore_course(self, course_id: str) -> ActionResult:
        """Undo `deactivate_course`: make the course visible again (``visible`` 1)."""
        remote = self.remote_id("courses", course_id, field="course_id")
        await self._update_course({"id": self._int(remote, "course_id"), "visible": 1}, field="course_id")
        return ActionResult.one(
            "deactivate_course",
            key=course_id,
            status=ItemStatus.UPDATED,
            id=self.make_id("courses", remote),
            remote_id=remote,
            detail="visible again (visible=1)",
        )

    @staticmethod
    def _int(remote: str, field: str) -> int:
        value = _moodle_id(remote)
        if value is None:
            raise InvalidInput(
                f"{field}: Moodle ids are positive whole numbers below 2**63, got {remote[:40]!r}",
                field=field,
            )
        return value

    # -- actions: enrolment and completion ----------------------------------------------------------------

    async def handle_enroll_user(self, action: EnrollUser) -> ActionResult:
        userid = self._int(self.remote_id("users", action.user_id, field="user_id"), "user_id")
        courseid = self._int(
            self.remote_id("course_revisions", action.course_revision_id, field="course_revision_id"),
            "course_revision_id",
        )
        remote = f"{courseid}:{userid}"
        progression = self.make_id("course_progressions", remote)
        present = self._items(
            await self.call(
                "core_enrol_get_enrolled_users",
                {"courseid": courseid, "options": [{"name": "userfields", "value": "id"}]},
            ),
            EnrolledUserWire,
            "core_enrol_get_enrolled_users",
        )
        if any(wire.id == userid for wire, _ in present):
            return ActionResult.one(
                "enroll_user",
                key=action.user_id,
                status=ItemStatus.UNCHANGED,
                id=progression,
                remote_id=remote,
                detail="already enrolled",
            )
        try:
            answer = await self.call(
                "enrol_manual_enrol_users",
                {
                    "enrolments": [
                        {"roleid": self.config.enrol_role_id, "userid": userid, "courseid": courseid}
                    ]
                },
                write=True,
                idempotent=True,
            )
        except LMSConnectError as exc:
            code = errorcode_of(exc)
            if code == "wsnoinstance":
                raise self._failed(
                    "enroll_user",
                    action.user_id,
                    NO_MANUAL_ENROLMENT,
                    f"course {courseid} has no enabled manual enrolment instance; add 'Manual enrolments' in "
                    "the course's Participants > Enrolment methods",
                    exc,
                ) from None
            if code == "wsusercannotassign":
                raise self._failed(
                    "enroll_user",
                    action.user_id,
                    "LMS.ROLE_NOT_ASSIGNABLE",
                    f"role {self.config.enrol_role_id} (config enrol_role_id) cannot be assigned in course "
                    f"{courseid} by the token's user",
                    exc,
                ) from None
            raise
        if answer is not None:
            # Moodle answers this function with a bare null; anything else is not Moodle's answer.
            raise self._invalid("enrol_manual_enrol_users", "expected null (no return value)", answer)
        return ActionResult.one(
            "enroll_user",
            key=action.user_id,
            status=ItemStatus.CREATED,
            id=progression,
            remote_id=remote,
            detail=f"manual enrolment, role {self.config.enrol_role_id}",
        )

    def _failed(
        self, action: Any, key: str, code: str, message: str, cause: LMSConnectError | None = None
    ) -> ActionFailed:
        result = ActionResult.one(
            action, key=key, status=ItemStatus.FAILED, error=ItemError(code=code, message=message)
        )
        error = ActionFailed(
            message, result=result, code=code, vendor_message=cause.vendor_message if cause else None
        )
        return self.http.raise_mapped(error)  # type: ignore[return-value]

    def _progression_ids(self, value: str) -> tuple[int, int]:
        remote = self.remote_id("course_progressions", value, field="course_progression_id")
        course, sep, user = remote.partition(":")
        courseid, userid = _moodle_id(course), _moodle_id(user)
        if not sep or courseid is None or userid is None:
            raise InvalidInput(
                "course_progression_id: expected a Moodle progression '<course id>:<user id>', "
                f"got {remote[:80]!r}",
                field="course_progression_id",
            )
        return courseid, userid

    async def _completion(self, courseid: int, userid: int, key: str) -> CompletionStatusWire:
        try:
            return (await self._completion_status(courseid, userid))[1]
        except LMSConnectError as exc:
            reasons = {
                "cannotviewreport": f"course {courseid} has no completion tracking enabled",
                "nocriteriaset": f"course {courseid} has no course-completion criteria, so overriding "
                "activities cannot complete it",
                "usernotenroled": f"user {userid} has no active enrolment with a tracked (student) role in "
                f"course {courseid}",
            }
            code = errorcode_of(exc)
            if code in reasons:
                raise self._failed(
                    "complete_course", key, COMPLETION_NOT_TRACKED, reasons[code], exc
                ) from None
            raise

    async def _tracked_modules(self, courseid: int) -> list[ModuleWire]:
        """The activities of a course with completion tracking (``core_course_get_contents``)."""
        function = "core_course_get_contents"
        sections = self._items(await self.call(function, {"courseid": courseid}), SectionWire, function)
        modules = [m for section, _ in sections for m in section.modules]
        seen: set[int] = set()
        for module in modules:
            self._unique(f"{function} (course {courseid})", seen, module.id)
        return [m for m in modules if (m.completion or 0) > 0]

    async def _graded_items(self, courseid: int, userid: int) -> list[GradeItemWire]:
        """The activity grade items of a course for one user (``gradereport_user_get_grade_items``)."""
        function = "gradereport_user_get_grade_items"
        report = self._wire(
            await self.call(function, {"courseid": courseid, "userid": userid}), GradeItemsWire, function
        )
        self._no_warnings(function, report.warnings)
        graded: list[GradeItemWire] = []
        for usergrades in report.usergrades:
            if (usergrades.courseid, usergrades.userid) != (courseid, userid):
                raise self._invalid(
                    function,
                    f"asked for user {userid} in course {courseid}, answered the grades of user "
                    f"{usergrades.userid} in course {usergrades.courseid}",
                )
            for item in usergrades.gradeitems:
                if item.itemtype != "mod" or item.cmid is None:
                    continue
                if not (item.itemmodule and _PLUGIN_NAME.fullmatch(item.itemmodule)):
                    raise self._invalid(
                        function,
                        f"the grade item of activity {item.cmid} names no module type ('itemmodule')",
                    )
                if not item.grademin <= item.grademax:
                    raise self._invalid(
                        function,
                        f"the grade range of activity {item.cmid} is {item.grademin}..{item.grademax}",
                    )
                graded.append(item)
        return graded

    async def handle_complete_course(self, action: CompleteCourse) -> ActionResult:
        key = action.course_progression_id
        courseid, userid = self._progression_ids(key)
        remote = f"{courseid}:{userid}"
        # Read everything first: a refusal must leave Moodle untouched.
        before = await self._completion(courseid, userid, key)
        if before.completionstatus.completed and action.score is None:
            return self._complete_result(
                key, remote, ItemStatus.UNCHANGED, "Moodle already reports it complete"
            )
        tracked = await self._tracked_modules(courseid)
        graded: list[GradeItemWire] = []
        if action.score is not None:
            graded = await self._graded_items(courseid, userid)
            if not graded:
                raise self._failed(
                    "complete_course",
                    key,
                    NO_GRADED_ACTIVITY,
                    f"course {courseid} has no activity with a grade item, so it cannot receive a score; "
                    "nothing was changed (retry without score to complete it)",
                )

        async def grade(item: GradeItemWire) -> None:
            low, high = item.grademin, item.grademax
            value = round(low + (high - low) * (action.score or 0) / 100, 5)
            function = "core_grades_update_grades"
            answer = await self.call(
                function,
                {
                    "source": "lmsconnect",
                    "courseid": courseid,
                    "component": f"mod_{item.itemmodule}",
                    "activityid": item.cmid,
                    "itemnumber": item.itemnumber or 0,
                    "grades": [{"studentid": userid, "grade": value}],
                },
                write=True,
                idempotent=True,
            )
            if isinstance(answer, bool) or not isinstance(answer, int):
                # Moodle answers a bare GRADE_UPDATE_* status: 0 saved, 1 failed, 2-4 not saved (why).
                raise self._invalid(function, "expected a status number (0 when saved)", answer)
            if answer != 0:
                raise self._failed(
                    "complete_course",
                    key,
                    "LMS.GRADE_NOT_SAVED",
                    f"Moodle did not save the grade of activity {item.cmid} (status {answer})",
                )

        async def override(module: ModuleWire) -> None:
            function = "core_completion_override_activity_completion_status"
            answer = self._wire(
                await self.call(
                    function,
                    {"userid": userid, "cmid": module.id, "newstate": 1},
                    write=True,
                    idempotent=True,
                ),
                OverrideWire,
                function,
            )
            if (answer.cmid, answer.userid) != (module.id, userid):
                raise self._invalid(
                    function,
                    f"overrode activity {module.id} for user {userid}, answered the completion of activity "
                    f"{answer.cmid} for user {answer.userid}",
                )

        # Grades first: grade-based completion then marks those activities complete-pass or -fail, which
        # an override to "complete" leaves as they are. A few at a time, not all at once (see
        # _COMPLETION_WRITES); a transient refusal is retried by `call`.
        async for _ in stream_map(graded, grade, concurrency=_COMPLETION_WRITES):
            pass
        async for _ in stream_map(tracked, override, concurrency=_COMPLETION_WRITES):
            pass
        after = await self._completion(courseid, userid, key)
        scored = f"; score {action.score} on {len(graded)} graded activities" if graded else ""
        if after.completionstatus.completed:
            return self._complete_result(
                key, remote, ItemStatus.UPDATED, f"{len(tracked)} activity completions overridden{scored}"
            )
        return self._complete_result(
            key,
            remote,
            ItemStatus.ACCEPTED,
            f"{len(tracked)} activity completions overridden{scored}; Moodle completes the course when its "
            "completion cron task (completion_regular_task) aggregates it",
        )

    def _complete_result(self, key: str, remote: str, status: ItemStatus, detail: str) -> ActionResult:
        return ActionResult.one(
            "complete_course",
            key=key,
            status=status,
            id=self.make_id("course_progressions", remote),
            remote_id=remote,
            detail=detail,
        )

    async def wait_until_visible(
        self, result: ActionResult, *, timeout_s: float = _VISIBLE_TIMEOUT_S
    ) -> ActionResult:
        """Poll course completion of `accepted` complete_course items until Moodle reports them complete.

        Moodle aggregates such a completion in its completion cron task, which needs two runs: with cron
        every minute (Moodle's recommendation) that is up to about two minutes, hence the default
        ``timeout_s`` of 180 s. Polls after 0.5 s, then less and less often (at most every 15 s).
        """
        if result.action != "complete_course":
            return await super().wait_until_visible(result, timeout_s=timeout_s)
        deadline = time.monotonic() + timeout_s
        items = list(result.items)
        delay = 0.5
        while any(i.status is ItemStatus.ACCEPTED for i in items):
            for index, item in enumerate(items):
                if item.status is not ItemStatus.ACCEPTED:
                    continue
                courseid, userid = self._progression_ids(item.key)
                status = await self._completion(courseid, userid, item.key)
                if status.completionstatus.completed:
                    items[index] = attrs.evolve(
                        item, status=ItemStatus.UPDATED, detail="Moodle now reports the course complete"
                    )
            if time.monotonic() >= deadline or not any(i.status is ItemStatus.ACCEPTED for i in items):
                break
            await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 2, 15.0)
        return ActionResult(action=result.action, items=tuple(items))

    # -- scope testing -----------------------------------------------------------------------------------

    async def site_functions(self) -> set[str]:
        """The web-service functions the token's service allows (``core_webservice_get_site_info``)."""
        info = self._wire(await self.call(SITE_INFO), SiteInfoWire, SITE_INFO)
        return {f.name for f in info.functions}

    async def check_access(self) -> Sequence[CheckItem]:
        allowed = await self.site_functions()
        items = []
        for name, functions in REQUIRED_FUNCTIONS.items():
            if name == "users" and self.config.include_deleted_users:
                functions = (*functions, DELETED_USERS_FUNCTION)
            if name == "course_progressions" and self.config.progressions_via_report:
                functions = REPORT_FUNCTIONS
            elif name == "course_progressions" and self.config.progression_scores:
                functions = (*functions, SCORES_FUNCTION)
            if name == "course_revisions" and self.config.course_categories:
                functions = (*functions, CATEGORIES_FUNCTION)
            missing = tuple(f for f in functions if f not in allowed)
            kind = "action" if name in self.capabilities.actions else "model"
            items.append(
                CheckItem(
                    kind=kind,  # type: ignore[arg-type]
                    name=name,
                    status=CheckStatus.MISSING_PERMISSION if missing else CheckStatus.OK,
                    permissions=missing,
                    detail=("add to the token's external service: " + ", ".join(missing))
                    if missing
                    else "the service allows " + ", ".join(functions),
                )
            )
        return items
