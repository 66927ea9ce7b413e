"""TalentLMS API v2 beside v1: its client, the availability probe, and the lenient reading of its answers.

What v2 is (research note scale-out-v2-and-bulk-reads.md §1): ``<domain>/api/v2/...`` with the headers
``X-API-Key`` (not v1's Basic auth), ``X-API-Version: YYYY-MM-DD`` and ``Accept: application/json``, JSON
bodies, and errors as ``{"type": ..., "message": ...}`` or under an ``error`` key. The connector uses it for
the one thing v1 cannot do, editing courses: ``POST /v2/batch/courses`` (at most 100 courses per call,
matched by id or code, with ``is_active``) answers with a background task, read with
``GET /v2/tasks/:id``.

The v2 client sends through the connection's one `HttpClient`: one session and one rate budget, because
TalentLMS counts v1 and v2 calls against the same limits (200 per 5 s and the plan's hour).

What is not published is read leniently, never guessed into a result: the task's answer has no documented
shape, so its status is looked for under a few names, an unknown status counts as still running, per-item
errors are taken where they can be matched to a course code or id, and every item's outcome is confirmed
by reading the course back (`TalentLMSConnector.wait_until_visible`).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Final, Protocol

import attrs

from lmsconnect import (
    AuthenticationError,
    InvalidRemoteResponse,
    LMSConnectError,
    NotFound,
    PermissionDenied,
    RateLimited,
)
from lmsconnect.plugin import HttpClient, Response, wire_excerpt

from ._wire import error_of, parse_str

__all__ = [
    "BATCH_LIMIT",
    "DEFAULT_API_VERSION",
    "V2_ROUTES",
    "TaskState",
    "V2Client",
    "read_task",
    "task_id_of",
]

#: The ``X-API-Version`` sent when none is configured. TalentLMS publishes no value (its Postman collection
#: uses a variable); this is the date the simulator and tests were written against, pinned so that a
#: change in TalentLMS's default cannot change what this connector gets.
DEFAULT_API_VERSION: Final = "2024-11-01"
#: Courses per ``POST /v2/batch/courses`` (TalentLMS's documented maximum).
BATCH_LIMIT: Final = 100
#: The v2 routes with an id in them, for `HttpClient(routes=...)` (telemetry names calls by template).
V2_ROUTES: Final = ("/v2/tasks/{id}", "/v2/courses/{id}")

# Task statuses read as finished or failed; any other (or none) is "still running" until the caller's
# timeout. The real words are not documented: these are the usual ones.
_DONE: Final = frozenset(
    {"completed", "complete", "done", "finished", "success", "succeeded", "successful", "processed",
     "completed_with_errors", "partially_completed", "partial"}
)  # fmt: skip
_FAILED: Final = frozenset({"failed", "failure", "error", "errored", "cancelled", "canceled", "aborted"})
_ERROR_LISTS: Final = ("errors", "failed", "failures", "failed_items", "results", "items")
# A task id goes into a URL path (/v2/tasks/<id>): letters, digits, '-' and '_' only.
_TASK_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}")


class ErrorFor(Protocol):
    def __call__(
        self,
        status: int,
        kind: str | None,
        message: str | None,
        *,
        where: str,
        headers: Mapping[str, str] | None = None,
    ) -> LMSConnectError: ...


@attrs.frozen(kw_only=True)
class TaskState:
    """What ``GET /v2/tasks/:id`` said, as far as it could be read."""

    task_id: str
    #: The status word as TalentLMS wrote it ("" when the answer had none).
    status: str = ""
    finished: bool = False
    failed: bool = False
    #: Messages of failed items, by the course code or id they name.
    item_errors: Mapping[str, str] = attrs.field(factory=dict)


def _data(body: Any) -> Any:
    """v2 wraps single objects as ``{"_data": {...}}``; unwrapped answers are read as they are."""
    if isinstance(body, Mapping) and isinstance(body.get("_data"), Mapping):
        return body["_data"]
    return body


def _scalar_text(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    return parse_str(value) if isinstance(value, str) else None


def task_id_of(body: Any) -> str | None:
    """The background task id of a batch answer (``task_id``, ``taskId`` or ``id``, wrapped or not)."""
    for where in (_data(body), body):
        if isinstance(where, Mapping):
            for key in ("task_id", "taskId", "id"):
                found = _scalar_text(where.get(key))
                if found and _TASK_ID.fullmatch(found):
                    return found
            task = where.get("task")
            if isinstance(task, Mapping) and task is not where:
                return task_id_of(task)
    return None


def read_task(body: Any, task_id: str) -> TaskState:
    """A task answer read leniently: status under ``status``/``state`` (a word, or an object with one),
    per-item errors from the first list of objects naming a course ``code`` or ``id``."""
    data = _data(body)
    if not isinstance(data, Mapping):
        return TaskState(task_id=task_id)
    raw = data.get("status", data.get("state"))
    if isinstance(raw, Mapping):
        raw = raw.get("name", raw.get("status"))
    status = (_scalar_text(raw) or "").strip()
    word = status.lower().replace(" ", "_").replace("-", "_")
    errors: dict[str, str] = {}
    for key in _ERROR_LISTS:
        entries = data.get(key)
        if not isinstance(entries, list):
            continue
        for entry in entries[:1000]:
            if not isinstance(entry, Mapping):
                continue
            outcome = (_scalar_text(entry.get("status")) or "").lower()
            if outcome in _DONE:
                continue  # a result row for an item that went through
            message = next(
                (m for m in (_scalar_text(entry.get(k)) for k in ("message", "error", "reason")) if m),
                None,
            )
            if message is None and not outcome:
                continue
            for name in ("code", "id", "course_id"):
                who = _scalar_text(entry.get(name))
                if who:
                    errors[who] = (message or f"status {outcome}")[:500]
    return TaskState(
        task_id=task_id,
        status=status[:100],
        finished=word in _DONE or word in _FAILED,
        failed=word in _FAILED,
        item_errors=errors,
    )


def _error_fields(body: Any) -> tuple[str | None, str | None]:
    """(type, message) of a v2 error body: v1's shapes, or any top-level ``message``."""
    kind, message = error_of(body)
    if message is None and isinstance(body, Mapping):
        message = _scalar_text(body.get("message"))
        kind = _scalar_text(body.get("type"))
    return kind, message


class V2Client:
    """Calls to ``<api root>/v2/...`` with v2's headers and error bodies, through the connection's client."""

    def __init__(
        self,
        http: HttpClient,
        *,
        api_key: str,
        api_version: str,
        error_for: ErrorFor,
        before_call: Callable[[], Awaitable[None]],
        write_attempts: int,
    ) -> None:
        self._http = http
        self._key = api_key
        self._version = api_version
        self._error_for = error_for
        self._before_call = before_call
        self._write_attempts = write_attempts

    def headers(self, *, key: bool = True) -> dict[str, str]:
        headers = {"X-API-Version": self._version, "Accept": "application/json"}
        if key:
            headers["X-API-Key"] = self._key
        return headers

    @staticmethod
    def is_v2_path(path: str) -> bool:
        return path.lstrip("/").startswith("v2/")

    async def send(self, method: str, path: str, **kwargs: Any) -> Response:
        """A raw v2 request (passthrough): v2 headers instead of Basic auth, the response as it came."""
        await self._before_call()
        headers = {**self.headers(), **(kwargs.pop("headers", None) or {})}
        return await self._http.request(method, path, headers=headers, authenticate=False, **kwargs)

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        key: bool = True,
    ) -> Any:
        """One v2 call; its JSON answer (None for an empty one), or its error mapped into the hierarchy.

        A write refused with 429 was not applied and is sent again (after the budget's pause); any
        other failed write is not retried (the transport's rule for non-idempotent calls).
        """
        await self._before_call()
        where = f"{method} /v2/{path}"
        attempts = self._write_attempts if method != "GET" else 1
        for attempt in range(1, attempts + 1):
            response = await self._http.request(
                method,
                f"/v2/{path}",
                params=params,
                json_body=json_body,
                headers=self.headers(key=key),
                authenticate=False,
                raise_for_status=False,
            )
            if response.status < 400:
                return None if not response.body.strip() else response.json()
            error = self._mapped(response, where)
            if isinstance(error, RateLimited) and attempt < attempts:
                continue
            raise error
        raise AssertionError("unreachable")  # pragma: no cover

    def _mapped(self, response: Response, where: str) -> LMSConnectError:
        try:
            body = response.json()
        except InvalidRemoteResponse:
            body = None  # v2 answers HTML without `Accept: application/json`; the status still says
        kind, message = _error_fields(body)
        error = self._error_for(response.status, kind, message, where=where, headers=response.headers)
        return self._http.raise_mapped(error)

    async def probe(self) -> str | None:
        """None when v2 answers this key; else why not (a 401/403/404 on the health check or on one
        authenticated read). Other failures (5xx, timeouts) raise: unknown is not "unavailable"."""
        for path, params, key in (
            ("health", None, False),
            ("courses", {"page[number]": "1", "page[size]": "1"}, True),
        ):
            try:
                await self.call("GET", path, params=params, key=key)
            except (AuthenticationError, PermissionDenied, NotFound) as exc:
                said = f": {exc.vendor_message}" if exc.vendor_message else ""
                return f"GET /v2/{path} answered {exc.status}{said}"
        return None

    async def batch_courses(self, courses: Sequence[Mapping[str, Any]]) -> str:
        """Send at most `BATCH_LIMIT` course upserts; the id of the background task that applies them."""
        if not 0 < len(courses) <= BATCH_LIMIT:
            raise ValueError(f"a batch holds 1 to {BATCH_LIMIT} courses, not {len(courses)}")
        where = "POST /v2/batch/courses"
        body = await self.call("POST", "batch/courses", json_body={"courses": list(courses)})
        task_id = task_id_of(body)
        if task_id is None:
            raise InvalidRemoteResponse(
                f"{where} answered without a task id (looked for task_id, taskId and id): "
                f"{wire_excerpt(body, scrub=self._http.scrub)}",
                connector=self._http.slug,
            )
        return task_id

    async def task(self, task_id: str) -> TaskState:
        """The task's state. An answer that is not JSON counts as "still running"; a 404 as ended (a
        task TalentLMS no longer keeps): either way, reading the courses back decides."""
        try:
            return read_task(await self.call("GET", f"tasks/{task_id}"), task_id)
        except InvalidRemoteResponse:
            return TaskState(task_id=task_id, status="unreadable answer")
        except NotFound:
            return TaskState(task_id=task_id, status="not found (404)", finished=True)
