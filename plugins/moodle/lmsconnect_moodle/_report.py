"""Progressions of the whole site from a Report builder custom report (config ``progressions_via_report``).

No stock Moodle web service returns a course's completions for all its users. A custom report on the
"Course participants" source does: ``core_reportbuilder_retrieve_report`` returns it in pages of any size,
so the whole site's enrolments, enrolment times and completion times cost one call per page instead of
one call per user and one per completed progression.

What the report gives is what Moodle shows on screen, not data: every cell is formatted for the token's
user (dates in their language and time zone, to the minute; booleans and statuses as words) and course and
user ids appear only inside links. So the report must have exactly the columns of `LAYOUT`, in that order,
with the headers Moodle gives them in English; anything else is refused with a `ConfigurationError` that
says what to change, never read approximately. docs/moodle-setup.md has the one-time setup.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import zoneinfo
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, Final

import attrs
import cattrs

from lmsconnect import ConfigurationError, CourseProgression, InvalidRemoteResponse, ProgressionStatus
from lmsconnect.plugin import announce_pages, configure_converter, stream_map, structure_wire, wire_excerpt

__all__ = [
    "LAYOUT",
    "LIST_REPORTS",
    "PARTICIPANTS_SOURCE",
    "REPORT_FUNCTIONS",
    "RETRIEVE_REPORT",
    "ReportColumn",
    "ReportReader",
    "parse_report_date",
]

LIST_REPORTS: Final = "core_reportbuilder_list_reports"
RETRIEVE_REPORT: Final = "core_reportbuilder_retrieve_report"
REPORT_FUNCTIONS: Final = (LIST_REPORTS, RETRIEVE_REPORT)
PARTICIPANTS_SOURCE: Final = "core_course\\reportbuilder\\datasource\\participants"
_LIST_PAGE: Final = 50
_FIX_REPORT: Final = "Set the report up in Moodle as docs/moodle-setup.md (step 7) describes"


@attrs.frozen
class ReportColumn:
    """One column the report must have: Moodle's identifier, its English header, what lmsconnect reads."""

    key: str
    header: str
    reads: str


LAYOUT: Final = (
    ReportColumn(
        "course:courseshortnamewithlink", "Course short name with link", "the course id (in the link)"
    ),
    ReportColumn("user:fullnamewithlink", "Full name with link", "the user id (in the link)"),
    ReportColumn("user:username", "Username", "nothing: with the course short name, a unique sort order"),
    ReportColumn("enrolment:status", "Status", "Active, or Suspended / Not current (DROPPED)"),
    ReportColumn("enrolment:timestarted", "Time started", "enrolled_at"),
    ReportColumn("completion:timecompleted", "Time completed", "completed_at (COMPLETED when present)"),
    ReportColumn("completion:progresspercent", "Student progress", "progress; IN_PROGRESS when above 0%"),
)
"""The report's columns, in order. Sorting by the first and third makes the row order unique, so pages
read one after another never skip or repeat a row."""

_COURSE, _USER, _USERNAME, _STATUS, _STARTED, _COMPLETED, _PROGRESS = range(len(LAYOUT))
_ACTIVE: Final = "Active"
_INACTIVE: Final = frozenset({"Suspended", "Not current"})
_COURSE_LINK: Final = re.compile(r"""href=["'][^"']*/course/view\.php\?(?:[^"']*&(?:amp;)?)?id=(\d+)""")
_USER_LINK: Final = re.compile(r"""href=["'][^"']*/user/profile\.php\?(?:[^"']*&(?:amp;)?)?id=(\d+)""")
_DATE: Final = re.compile(
    r"^(?:[A-Za-z]+,\s*)?(\d{1,2})\s+([A-Za-z]+)\s+(\d{4}),\s*(\d{1,2}):(\d{2})\s*([AaPp][Mm])$"
)
_MONTHS: Final = {
    name: number
    for number, name in enumerate(
        (
            "january",
            "february",
            "march",
            "april",
            "may",
            "june",
            "july",
            "august",
            "september",
            "october",
            "november",
            "december",
        ),
        start=1,
    )
}
_PERCENT: Final = re.compile(r"^(\d+(?:\.\d+)?)\s*%$")


def parse_report_date(text: str, zone: dt.tzinfo) -> dt.datetime:
    """A report cell's date (Moodle's English ``strftimedaydatetime``, e.g. ``Friday, 27 November 2026,
    8:42 AM``) as an aware UTC datetime, read in the time zone of the token's user; ValueError otherwise.

    An hour that happens twice when clocks go back is read as the first of the two (the cell cannot say).
    """
    match = _DATE.match(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a date like 'Friday, 27 November 2026, 8:42 AM'")
    day, month_name, year, hour, minute, half = match.groups()
    month = _MONTHS.get(month_name.lower())
    if month is None or not 1 <= int(hour) <= 12:
        raise ValueError(f"{text!r} is not a date like 'Friday, 27 November 2026, 8:42 AM'")
    hour24 = int(hour) % 12 + (12 if half.upper() == "PM" else 0)
    local = dt.datetime(int(year), month, int(day), hour24, int(minute), tzinfo=zone)
    return local.astimezone(dt.timezone.utc)


# -- wire records: only what is read; Moodle's other keys are ignored ---------------------------------------


@attrs.frozen
class _Details:
    id: int
    source: str
    name: str | None = None
    sourcename: str | None = None
    conditiondata: str | None = None


@attrs.frozen
class _Listing:
    reports: list[_Details]


@attrs.frozen
class _Row:
    columns: list[str | None]


@attrs.frozen
class _Data:
    headers: list[str]
    rows: list[_Row]
    totalrowcount: int


@attrs.frozen
class _Retrieved:
    details: _Details
    data: _Data


def _converter() -> cattrs.Converter:
    converter = cattrs.Converter(detailed_validation=True)
    configure_converter(converter)
    return converter


_CONVERTER: Final = _converter()

Call = Callable[[str, Mapping[str, Any]], Awaitable[Any]]
MakeId = Callable[..., str]


@attrs.define
class _Pending:
    """The progression of the (course, user) being read: a user enrolled by two methods has two rows,
    adjacent in the report's sort order, which make one progression."""

    courseid: int
    userid: int
    active: bool
    enrolled_at: dt.datetime | None
    completed_at: dt.datetime | None
    progress: float | None
    rows: list[list[str | None]]


@attrs.define
class _Order:
    """Checks that each course's rows, and each user's rows within it, come together, as the report's sort
    order promises: with it a page boundary can neither repeat nor skip a row. Keeps the ids of the courses
    read so far and of the users of the current course only."""

    done: set[int] = attrs.Factory(set)
    course: int | None = None
    users: set[int] = attrs.Factory(set)

    def see(self, courseid: int, userid: int) -> str | None:
        if courseid != self.course:
            if courseid in self.done:
                return f"course {courseid} comes again after other courses"
            if self.course is not None:
                self.done.add(self.course)
            self.course, self.users = courseid, set()
        if userid in self.users:
            return f"user {userid} comes again in course {courseid}, apart from their other rows"
        self.users.add(userid)
        return None


class ReportReader:
    """Reads progressions from the custom report named or numbered ``wanted``.

    ``call`` is the connector's web-service call, ``make_id`` its id maker; ``zone`` is the time zone of
    the token's user (config ``report_timezone``), ``page_size`` the rows per call.
    """

    def __init__(
        self,
        *,
        call: Call,
        make_id: MakeId,
        wanted: str,
        zone: str,
        page_size: int,
        concurrency: int,
        connector: str = "moodle",
    ) -> None:
        self._call = call
        self._make_id = make_id
        self.wanted = wanted.strip()
        try:
            self.zone: dt.tzinfo = zoneinfo.ZoneInfo(zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ConfigurationError(
                f"report_timezone: {zone!r} is not an IANA time zone (e.g. 'UTC', 'Europe/London'); give the "
                "time zone of the token's user, in which Moodle formats the report's dates",
                connector=connector,
            ) from None
        if page_size < 1:
            raise ConfigurationError(
                f"report_page_size: must be at least 1, got {page_size}", connector=connector
            )
        self.page_size = page_size
        self.concurrency = max(1, concurrency)
        self.connector = connector

    # -- finding and checking the report ------------------------------------------------------------------

    async def find(self) -> _Details:
        """The report's details from ``core_reportbuilder_list_reports`` (the reports the token's user may
        view), by id when ``wanted`` is a number, else by name."""
        found: list[_Details] = []
        names: list[str] = []
        page = 0
        while True:
            raw = await self._call(LIST_REPORTS, {"page": page, "perpage": _LIST_PAGE})
            listing = self._structure(raw, _Listing, LIST_REPORTS)
            for report in listing.reports:
                names.append(f"{report.id} {report.name!r}")
                if (self.wanted.isdigit() and report.id == int(self.wanted)) or (
                    not self.wanted.isdigit() and (report.name or "").strip() == self.wanted
                ):
                    found.append(report)
            if len(listing.reports) < _LIST_PAGE:
                break
            page += 1
        if not found:
            visible = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
            raise ConfigurationError(
                f"progressions_via_report: no custom report {self.wanted!r} among the reports the token's "
                f"user may view ({visible or 'none'}); create it as docs/moodle-setup.md describes and add "
                "the token's user to its audience, or give the id or exact name of an existing one",
                connector=self.connector,
                hint=_FIX_REPORT,
            )
        if len(found) > 1:
            raise ConfigurationError(
                f"progressions_via_report: {len(found)} reports are named {self.wanted!r} (ids "
                f"{', '.join(str(r.id) for r in found)}); give the id of the one to read",
                connector=self.connector,
                hint=_FIX_REPORT,
            )
        return found[0]

    def _structure(self, raw: Any, cls: type[Any], where: str) -> Any:
        return structure_wire(_CONVERTER, raw, cls, where=where, connector=self.connector)

    def check_details(self, details: _Details) -> None:
        """The report reads the right source and leaves no enrolment out (ConfigurationError otherwise)."""
        label = f"report {details.id} {details.name!r}"
        if details.source != PARTICIPANTS_SOURCE:
            raise ConfigurationError(
                f"progressions_via_report: {label} has the source {details.sourcename or details.source!r}; "
                "it must be 'Course participants' (a new report: the source cannot be changed)",
                connector=self.connector,
                hint=_FIX_REPORT,
            )
        try:
            conditions = json.loads(details.conditiondata) if details.conditiondata else {}
        except ValueError:
            raise InvalidRemoteResponse(
                f"{RETRIEVE_REPORT}: {label} has conditiondata that is not JSON: "
                f"{wire_excerpt(details.conditiondata)}",
                connector=self.connector,
            ) from None
        if not isinstance(conditions, dict):
            conditions = {}
        # A condition is stored as "<entity>:<name>_operator" and "_value" (dates add _from, _to, ...);
        # operator 0 is "Any value" for every filter type but category, whose 0 is "equal to" its value.
        restricting = sorted(
            {
                key.rpartition("_")[0]
                for key, value in conditions.items()
                if (key.endswith("_operator") and str(value) not in ("0", ""))
                or (key.endswith("_value") and value not in (None, "", [], 0, "0"))
            }
        )
        if restricting:
            raise ConfigurationError(
                f"progressions_via_report: {label} has conditions that leave rows out "
                f"({', '.join(restricting)}); every enrolment must be in the report (an enrolment left out "
                "would look deleted): remove those conditions or set them to 'Any value' (the source's "
                "default 'Status is Active' hides the suspended enrolments that are DROPPED)",
                connector=self.connector,
                hint=_FIX_REPORT,
            )

    def check_headers(self, details: _Details, headers: list[str]) -> None:
        """The report has exactly the columns of `LAYOUT`, in order (ConfigurationError saying what to change
        otherwise)."""
        wanted = [c.header for c in LAYOUT]
        if headers == wanted:
            return
        label = f"report {details.id} {details.name!r}"
        missing = [c for c in LAYOUT if c.header not in headers]
        extra = [h for h in headers if h not in wanted]
        if missing or extra:
            what = []
            if missing:
                what.append("add " + ", ".join(f"'{c.header}' ({c.key})" for c in missing))
            if extra:
                what.append("remove " + ", ".join(repr(h) for h in extra))
            change = "; ".join(what)
        else:
            change = "reorder them"
        raise ConfigurationError(
            f"progressions_via_report: {label} has the columns {headers}; lmsconnect reads exactly "
            f"{wanted}, in this order, with Moodle's English headers: {change} (the token's user's language "
            "must be English, and headings left as Moodle names them)",
            connector=self.connector,
            hint=_FIX_REPORT,
        )

    # -- reading -------------------------------------------------------------------------------------------

    async def _page(self, reportid: int, page: int) -> _Retrieved:
        raw = await self._call(
            RETRIEVE_REPORT, {"reportid": reportid, "page": page, "perpage": self.page_size}
        )
        retrieved: _Retrieved = self._structure(raw, _Retrieved, RETRIEVE_REPORT)
        return retrieved

    async def progressions(self) -> AsyncIterator[CourseProgression]:
        """Every enrolment of the site as a progression, one page of rows in memory per call in flight."""
        details = await self.find()
        self.check_details(details)
        first = await self._page(details.id, 0)
        if first.details.id != details.id:
            raise InvalidRemoteResponse(
                f"{RETRIEVE_REPORT}: asked for report {details.id}, answered report {first.details.id}",
                connector=self.connector,
            )
        self.check_details(first.details)
        self.check_headers(first.details, first.data.headers)
        pages = -(-first.data.totalrowcount // self.page_size)

        async def fetch(page: int) -> _Retrieved:
            return await self._page(details.id, page)

        async def all_pages() -> AsyncIterator[_Retrieved]:
            yield first
            async for later in stream_map(range(1, pages), fetch, concurrency=self.concurrency):
                if later.data.headers != first.data.headers:
                    raise ConfigurationError(
                        f"progressions_via_report: report {details.id} changed its columns while it was read "
                        f"({later.data.headers}); read again",
                        connector=self.connector,
                    )
                yield later

        order = _Order()
        pending: _Pending | None = None
        for_page = 0
        async for retrieved in all_pages():
            rows = retrieved.data.rows
            if len(rows) > self.page_size or (not rows and for_page < pages - 1):
                raise InvalidRemoteResponse(
                    f"{RETRIEVE_REPORT}: page {for_page} of report {details.id} has {len(rows)} rows, where "
                    f"{first.data.totalrowcount} rows in pages of {self.page_size} were announced",
                    connector=self.connector,
                )
            for_page += 1
            if pages > 0:  # the report says how many rows, so how many pages: shown as the read's progress
                announce_pages("course_progressions", for_page, pages)
            for row in rows:
                current = self._parse(row.columns)
                if current is None:
                    continue
                if pending is not None and (pending.courseid, pending.userid) == (
                    current.courseid,
                    current.userid,
                ):
                    self._merge(pending, current)
                    continue
                problem = order.see(current.courseid, current.userid)
                if problem:
                    raise self._bad(
                        f"{problem}: the rows are not in one order; sort the report by "
                        f"'{LAYOUT[_COURSE].header}', then '{LAYOUT[_USERNAME].header}', ascending, and "
                        "nothing else (docs/moodle-setup.md), and read again if it changed meanwhile",
                        row.columns,
                    )
                if pending is not None:
                    yield self._progression(pending)
                pending = current
        if pending is not None:
            yield self._progression(pending)

    def _bad(self, message: str, columns: list[str | None]) -> InvalidRemoteResponse:
        return InvalidRemoteResponse(
            f"{RETRIEVE_REPORT}: {message}; row {wire_excerpt(columns)}", connector=self.connector
        )

    def _parse(self, columns: list[str | None]) -> _Pending | None:
        if len(columns) != len(LAYOUT):
            raise self._bad(
                f"a row has {len(columns)} cells where the report has {len(LAYOUT)} columns", columns
            )
        user = columns[_USER]
        if not user:
            return None  # a course, or an enrolment method, without anyone enrolled
        course = _COURSE_LINK.search(columns[_COURSE] or "")
        person = _USER_LINK.search(user)
        if course is None or person is None:
            raise self._bad("no course or user id in the link cells", columns)
        status = columns[_STATUS] or ""
        if status != _ACTIVE and status not in _INACTIVE:
            raise self._bad(
                f"enrolment status {status!r} is none of Active, Suspended, Not current (is the token's "
                "user's language English?)",
                columns,
            )
        progress = None
        if columns[_PROGRESS]:
            match = _PERCENT.match(columns[_PROGRESS] or "")
            if match is None or float(match.group(1)) > 100:
                raise self._bad(
                    f"progress {columns[_PROGRESS]!r} is not a percentage from 0 to 100 like '50.0%'", columns
                )
            progress = float(match.group(1))
        return _Pending(
            courseid=int(course.group(1)),
            userid=int(person.group(1)),
            active=status == _ACTIVE,
            enrolled_at=self._date(columns, _STARTED),
            completed_at=self._date(columns, _COMPLETED),
            progress=progress,
            rows=[columns],
        )

    def _date(self, columns: list[str | None], index: int) -> dt.datetime | None:
        text = columns[index]
        if not text:
            return None
        try:
            return parse_report_date(text, self.zone)
        except ValueError as exc:
            raise self._bad(
                f"{LAYOUT[index].header}: {exc} (is the token's user's language English?)", columns
            ) from None

    @staticmethod
    def _merge(into: _Pending, other: _Pending) -> None:
        # Moodle counts an enrolment as active when any of the user's enrolment methods is.
        into.active = into.active or other.active
        if other.enrolled_at is not None and (
            into.enrolled_at is None or other.enrolled_at < into.enrolled_at
        ):
            into.enrolled_at = other.enrolled_at
        into.completed_at = into.completed_at or other.completed_at
        if other.progress is not None:
            into.progress = max(into.progress or 0.0, other.progress)
        into.rows.extend(other.rows)

    def _progression(self, p: _Pending) -> CourseProgression:
        if not p.active:
            status = ProgressionStatus.DROPPED
        elif p.completed_at is not None:
            status = ProgressionStatus.COMPLETED
        elif p.progress:
            status = ProgressionStatus.IN_PROGRESS
        else:
            status = ProgressionStatus.ENROLLED
        remote = f"{p.courseid}:{p.userid}"
        return CourseProgression(
            id=self._make_id("course_progressions", remote),
            remote_id=remote,
            user_id=self._make_id("users", p.userid),
            course_revision_id=self._make_id("course_revisions", p.courseid),
            status=status,
            enrolled_at=p.enrolled_at,
            completed_at=p.completed_at,
            progress=p.progress,
            remote_data={RETRIEVE_REPORT: {"headers": [c.header for c in LAYOUT], "rows": p.rows}},
        )
