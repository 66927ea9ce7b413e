"""The aiohttp server of the Moodle simulator: ``/webservice/rest/server.php`` with tokens and services."""

from __future__ import annotations

import asyncio
import collections
import hashlib
import json
import math
import random
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar, Literal
from xml.sax.saxutils import escape

import attrs
from aiohttp import web

from lmsconnect.testing import SimulatorServer

from .._params import decode_params
from .._report import LAYOUT
from ._functions import FUNCTIONS, PARTICIPANTS, REPORT_COLUMNS, Context
from ._site import CustomReport, Enrolment, Module, Site, User, fixture_site, generate_site
from ._ws import ACCESS_DEBUG, WSError, missing_record, validate

__all__ = ["DEFAULT_SERVICE_FUNCTIONS", "MoodleSimulator"]

REST_PATH = "/webservice/rest/server.php"
CRON_PATH = "/admin/cron.php"

REPORT_FUNCTIONS: tuple[str, ...] = ("core_reportbuilder_list_reports", "core_reportbuilder_retrieve_report")

DEFAULT_SERVICE_FUNCTIONS: tuple[str, ...] = tuple(
    f for f in FUNCTIONS if f != "core_user_create_users" and f not in REPORT_FUNCTIONS
)
"""What the default token's service holds: every simulated function except ``core_user_create_users``
and the report builder's (`MoodleSimulator.add_report` adds those), like the service of the recordings."""

LAYOUT_COLUMNS: tuple[str, ...] = tuple(column.key for column in LAYOUT)
"""The columns of the report lmsconnect reads (docs/moodle-setup.md), `add_report`'s default."""

FaultKind = Literal["http_500", "http_503", "drop", "slow", "dml", "dml_write", "lock"]

_TRANSIENT_FAULTS: dict[str, tuple[str, str, str, str]] = {
    "dml": (
        "dml_read_exception",
        "dmlreadexception",
        "Error reading from database",
        "SQLSTATE[08006]: server closed the connection unexpectedly",
    ),
    "dml_write": (
        "dml_write_exception",
        "dmlwriteexception",
        "Error writing to database",
        "SQLSTATE[40P01]: deadlock detected",
    ),
    "lock": (
        "moodle_exception",
        "ex_unabletolock",
        "Unable to acquire a lock for caching.",
        "store: cachestore_file, lock: 5a1f0c",
    ),
}
"""Moodle's transient HTTP-200 exceptions, raised before the function runs (Moodle rolls the call back)."""


@attrs.define
class _Token:
    userid: int
    service: str


class MoodleSimulator(SimulatorServer):
    """A Moodle 5.0 site speaking the REST web-service protocol, for tests, demos and benchmarks.

    >>> async with MoodleSimulator(users=20, courses=5, enrollments=40) as sim:  # doctest: +SKIP
    ...     async with lmsconnect.connect("moodle", **sim.connect_config) as lms:
    ...         users = [u async for u in lms.list("users")]

    Every answer is HTTP 200 JSON, errors included, exactly as Moodle's REST server answers: an
    ``{"exception", "errorcode", "message"}`` body, with ``debuginfo`` only when ``debug=True``.

    Options beyond the common ones:

    - ``site``: ``"generated"`` (sizes and seed decide the data) or ``"fixture"`` (the site recorded in
      ``fixtures/moodle-5``, sizes ignored).
    - ``completion_cron``: seconds between runs of the simulated completion cron task
      (``\\core\\task\\completion_regular_task``), 60 by default as Moodle's recommended cron. As on a
      real site, an override or manual completion completes the course in the same call, but a
      completion that comes from a grade is reviewed by one run of the task and aggregated by a later
      one, so ``complete_course`` with a score answers `accepted` and the course shows complete one to
      two periods later. ``math.inf``: only `run_completion_cron` or ``GET /admin/cron.php`` (Moodle's
      web cron) runs the task; ``0``: everything at once (no lag at all, unlike Moodle).
    - ``debug``: the site's debugging switch (adds ``debuginfo`` and detailed messages to exceptions).
    - ``languages``: installed language packs (a course ``lang`` must be one of them); by default
      ``en`` alone for the recorded site (as a plain Moodle), ``en fr de es`` for a generated one.
    - ``fault_rate`` / ``fault_seed`` / ``fault_kinds`` / ``slow_seconds``: a deterministic share of
      requests fail: ``http_500``, ``http_503`` (HTML error pages), ``drop`` (connection closed without
      an answer), ``slow`` (answered after ``slow_seconds``), and Moodle's transient HTTP-200
      exceptions ``dml`` (``dml_read_exception``), ``dml_write`` (``dml_write_exception``) and ``lock``
      (``ex_unabletolock``); ``faults`` counts the ones injected.
    - ``max_workers``: at most this many requests are served at once, the rest queue (PHP-FPM's pool).
      Moodle itself has no rate limit, so there is none here.
    """

    # Moodle's cron every second rather than every minute: the demo shows `accepted`, then the wait.
    demo_options: ClassVar[Mapping[str, Any]] = {"completion_cron": 1.0}

    option_help: ClassVar[Mapping[str, str]] = {
        "site": "'generated' (sizes and seed decide the data) or 'fixture' (the recorded moodle-5 site)",
        "completion_cron": "seconds between runs of the completion cron task (inf: on request; 0: at once)",
        "debug": "the site's debugging switch: debuginfo and detailed messages in exceptions",
        "languages": "installed language packs, comma-separated (default: en, or en,fr,de,es generated)",
        "fault_rate": "share of requests (0-1) that fail as fault_kinds says",
        "fault_seed": "seed of the fault draws: the same seed gives the same faults",
        "fault_kinds": "kinds, comma-separated: http_500, http_503, drop, slow, dml, dml_write, lock",
        "slow_seconds": "delay of a 'slow' fault, in seconds",
        "max_workers": "requests served at once, the rest queue (PHP-FPM's pool); none: unlimited",
        "token": "the web-service token the site accepts (default: derived from seed)",
        "clock": "the site's clock (Python only)",
    }

    def __init__(
        self,
        *,
        users: int = 50,
        courses: int = 10,
        enrollments: int = 200,
        seed: int = 0,
        latency: float = 0.0,
        site: Literal["generated", "fixture"] = "generated",
        completion_cron: float = 60.0,
        debug: bool = False,
        languages: Iterable[str] | None = None,
        fault_rate: float = 0.0,
        fault_seed: int = 0,
        fault_kinds: Iterable[FaultKind] = ("http_500",),
        slow_seconds: float = 2.0,
        max_workers: int | None = None,
        token: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if site == "fixture":
            self.site: Site = fixture_site()
            self.site.languages = tuple(languages or ("en",))
        else:
            self.site = generate_site(
                users=users,
                courses=courses,
                enrollments=enrollments,
                seed=seed,
                languages=tuple(languages or ("en", "fr", "de", "es")),
            )
        self.site.completion_cron = float(completion_cron)
        self.site.clock = clock
        self.latency = latency
        self.debug = debug
        self.fault_rate = fault_rate
        self.fault_kinds: tuple[FaultKind, ...] = tuple(fault_kinds)
        self.slow_seconds = slow_seconds
        self._fault_rng = random.Random(fault_seed)
        self._workers = asyncio.Semaphore(max_workers) if max_workers else None
        self.services: dict[str, set[str]] = {"lms_connector": set(DEFAULT_SERVICE_FUNCTIONS)}
        self.token = token or hashlib.md5(f"moodle-simulator-{seed}".encode()).hexdigest()
        self.tokens: dict[str, _Token] = {self.token: _Token(userid=2, service="lms_connector")}
        self.calls = 0
        self.calls_by_route: collections.Counter[str] = collections.Counter()
        self.calls_by_function: collections.Counter[str] = collections.Counter()
        self.faults: collections.Counter[str] = collections.Counter()
        self.peak_in_flight: collections.Counter[str] = collections.Counter()
        """The most requests of each function the simulator was answering at once."""
        self._in_flight: collections.Counter[str] = collections.Counter()

    # -- lifecycle -----------------------------------------------------------------------------------

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", REST_PATH, self._handle)
        app.router.add_get(CRON_PATH, self._cron)
        return app

    @property
    def connect_config(self) -> dict[str, Any]:
        return {"base_url": self.url, "token": self.token}

    # -- tokens and services -------------------------------------------------------------------------

    def create_token(self, functions: Iterable[str], *, userid: int = 2, token: str | None = None) -> str:
        """A new token bound to a new service holding exactly ``functions``."""
        service = f"service_{len(self.services) + 1}"
        self.services[service] = set(functions)
        value = token or hashlib.md5(f"{service}-{len(self.tokens)}".encode()).hexdigest()
        self.tokens[value] = _Token(userid=userid, service=service)
        return value

    def remove_functions(self, *functions: str, token: str | None = None) -> None:
        """Take functions out of the service of ``token`` (default: the main token)."""
        self.services[self.tokens[token or self.token].service].difference_update(functions)

    # -- in-process helpers (the test double's own API) ----------------------------------------------

    def add_user(
        self, *, firstname: str, lastname: str, email: str | None = None, suspended: bool = False
    ) -> User:
        uid = self.site.new_id("user")
        username = f"{firstname.lower()}.{lastname.lower()}{uid}"
        user = User(
            id=uid,
            username=username,
            firstname=firstname,
            lastname=lastname,
            email=email or f"{username}@example.com",
            suspended=suspended,
            timecreated=self.site.now(),
        )
        self.site.users[uid] = user
        return user

    def delete_user(self, userid: int) -> None:
        """Delete as Moodle does: the row stays (mangled) and its enrolments go."""
        self.site.users[userid].delete(self.site.now())
        for key in [k for k in self.site.enrolments if k[0] == userid]:
            del self.site.enrolments[key]

    def enrolment(self, userid: int, courseid: int) -> Enrolment | None:
        return self.site.enrolments.get((userid, courseid))

    def activity_state(self, userid: int, cmid: int) -> int:
        return self.site.completion(userid, cmid).state

    def grade(self, userid: int, cmid: int) -> float | None:
        g = self.site.grades.get((userid, cmid))
        return g.raw if g else None

    def course_completed(self, userid: int, courseid: int) -> bool:
        return self.site.course_completion(userid, courseid).timecompleted is not None

    def modules(self, courseid: int) -> list[Module]:
        return self.site.course_modules(courseid)

    def add_report(
        self,
        name: str = "lmsconnect progressions",
        *,
        columns: Iterable[str] = LAYOUT_COLUMNS,
        sort: Iterable[str] = (LAYOUT[0].key, LAYOUT[2].key),
        source: str = PARTICIPANTS,
        conditiondata: str | None = None,
    ) -> CustomReport:
        """What an administrator does once for ``progressions_via_report`` (docs/moodle-setup.md): a custom
        report (by default the one lmsconnect reads) and the report builder's functions in the main
        token's service. ``conditiondata`` is the conditions' values as Moodle stores them (JSON)."""
        unknown = [c for c in columns if c not in REPORT_COLUMNS]
        if unknown:
            raise ValueError(f"the simulator cannot render the columns {unknown}")
        report = CustomReport(
            id=self.site.new_id("reportbuilder_report"),
            name=name,
            source=source,
            columns=list(columns),
            sort=list(sort),
            conditiondata=conditiondata,
            timecreated=self.site.now(),
        )
        self.site.reports[report.id] = report
        self.services[self.tokens[self.token].service].update(REPORT_FUNCTIONS)
        return report

    def run_completion_cron(self) -> int:
        """Run the completion task twice, as ``moodle cron completion`` does on the real site: everything
        changed so far is aggregated. Returns how many users were aggregated."""
        started = self.site.clock()
        return self.site.run_completion_task(started) + self.site.run_completion_task(started + 2.0)

    def find_course(self, predicate: Callable[[Any], bool]) -> Any:
        return next(c for c in self.site.iter_courses() if not c.is_site and predicate(c))

    # -- HTTP ----------------------------------------------------------------------------------------

    async def _cron(self, request: web.Request) -> web.Response:
        """Moodle's web cron (``/admin/cron.php``): one run of the completion task, now."""
        self.calls += 1
        self.calls_by_route[request.path] += 1
        done = self.site.run_completion_task(self.site.clock())
        return web.Response(
            text=f"Execute scheduled task: Regular Completion Tasks\n... aggregated {done} user(s)\n"
            "Cron completed\n",
            content_type="text/plain",
        )

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.calls += 1
        self.calls_by_route[request.path] += 1
        fault: FaultKind | None = None
        if self.fault_rate > 0 and self._fault_rng.random() < self.fault_rate:
            chosen = self._fault_rng.choice(self.fault_kinds)
            self.faults[chosen] += 1
            fault = chosen
        pairs: list[tuple[str, str]] = list(request.query.items())
        if request.method == "POST":
            form = await request.post()
            pairs += [(k, v) for k, v in form.items() if isinstance(v, str)]
        function = request.query.get("wsfunction", "")
        self._in_flight[function] += 1
        self.peak_in_flight[function] = max(self.peak_in_flight[function], self._in_flight[function])
        try:
            if self._workers is not None:
                async with self._workers:
                    return await self._serve(request, pairs, fault)
            return await self._serve(request, pairs, fault)
        finally:
            self._in_flight[function] -= 1

    async def _serve(
        self, request: web.Request, pairs: list[tuple[str, str]], fault: FaultKind | None
    ) -> web.StreamResponse:
        if self.latency:
            await asyncio.sleep(self.latency)
        if fault == "slow":
            await asyncio.sleep(self.slow_seconds)
        elif fault in ("http_500", "http_503"):
            status = 500 if fault == "http_500" else 503
            return web.Response(
                status=status, text=f"<html><body><h1>{status}</h1></body></html>", content_type="text/html"
            )
        elif fault == "drop":
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=500)
        reserved = {"wstoken": "", "wsfunction": "", "moodlewsrestformat": "xml"}
        rest: list[tuple[str, str]] = []
        for key, value in pairs:
            if key in reserved:
                reserved[key] = value
            else:
                rest.append((key, value))
        fmt = reserved["moodlewsrestformat"]
        try:
            if fault in _TRANSIENT_FAULTS:
                exception, errorcode, message, debuginfo = _TRANSIENT_FAULTS[fault]
                raise WSError(exception, errorcode, message, debuginfo=debuginfo)
            result = self._call(reserved["wstoken"], reserved["wsfunction"], rest)
        except WSError as exc:
            return self._respond(exc, fmt)
        return self._respond(result, fmt)

    def _call(self, token: str, function: str, pairs: list[tuple[str, str]]) -> Any:
        bound = self.tokens.get(token)
        if bound is None:
            raise WSError(
                "core\\exception\\moodle_exception", "invalidtoken", "Invalid token - token not found"
            )
        described = FUNCTIONS.get(function)
        if described is None:
            raise missing_record("external_functions", "name = ?", [function])
        allowed = self.services[bound.service]
        if function not in allowed:
            text = ACCESS_DEBUG.format(function=function)
            raise WSError(
                "webservice_access_exception", "accessexception", "Access control exception", debuginfo=text
            )
        self.calls_by_function[function] += 1
        params = validate(described.params, decode_params(pairs))
        ctx = Context(
            site=self.site,
            siteurl=self.url,
            userid=bound.userid,
            functions=tuple(f for f in FUNCTIONS if f in allowed),
            debug=self.debug,
        )
        return described.handler(ctx, params)

    def _respond(self, value: Any, fmt: str) -> web.Response:
        if fmt == "json":
            body = value.body(debug=self.debug) if isinstance(value, WSError) else value
            # PHP's json_encode escapes "/" and non-ASCII characters; clients see exactly that.
            text = json.dumps(body, separators=(",", ":")).replace("/", "\\/")
            return web.Response(text=text, content_type="application/json")
        return web.Response(text=_xml(value, debug=self.debug), content_type="application/xml")


def _xml(value: Any, *, debug: bool) -> str:
    head = '<?xml version="1.0" encoding="UTF-8" ?>\n'
    if isinstance(value, WSError):
        body = value.body(debug=debug)
        inner = f"<ERRORCODE>{escape(body['errorcode'])}</ERRORCODE>\n"
        inner += f"<MESSAGE>{escape(body['message'])}</MESSAGE>\n"
        if "debuginfo" in body:
            inner += f"<DEBUGINFO>{escape(body['debuginfo'])}</DEBUGINFO>\n"
        return f'{head}<EXCEPTION class="{escape(body["exception"])}">\n{inner}</EXCEPTION>\n'
    return f"{head}<RESPONSE>\n{_xml_value(value)}</RESPONSE>\n"


def _xml_value(value: Any) -> str:
    if value is None:
        return '<VALUE null="null"/>\n'
    if isinstance(value, dict):
        keys = "".join(f'<KEY name="{escape(str(k))}">{_xml_value(v)}</KEY>\n' for k, v in value.items())
        return f"<SINGLE>\n{keys}</SINGLE>\n"
    if isinstance(value, list):
        return "<MULTIPLE>\n" + "".join(_xml_value(v) for v in value) + "</MULTIPLE>\n"
    if isinstance(value, bool):
        return f"<VALUE>{int(value)}</VALUE>\n"
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return f"<VALUE>{int(value)}</VALUE>\n"
    return f"<VALUE>{escape(str(value))}</VALUE>\n"
