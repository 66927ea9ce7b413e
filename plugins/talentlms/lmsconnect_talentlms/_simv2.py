"""The TalentLMS API v2 endpoints of `TalentLMSSimulator` (``/api/v2/...``), on the same tenant and limits.

What they do (research note scale-out-v2-and-bulk-reads.md §1; where it is silent, the choice is said):

* Every call but ``GET /v2/health`` needs ``X-API-Key`` (missing or wrong: 401) and every call needs
  ``X-API-Version: YYYY-MM-DD`` (missing or malformed: 400; TalentLMS publishes no value, any date
  passes). Errors are JSON ``{"type": ..., "message": ...}`` only when the request sent
  ``Accept: application/json``; without it they come back as HTML, as TalentLMS warns.
* A domain whose API is not enabled answers 403; a tenant without v2 (``api_v2=False``) answers 404 on
  every v2 path, the health check included.
* Calls count against the same 200-per-5-s window and hourly budget as v1 (429 with the same headers) and
  carry ``X-RateLimit-Limit`` / ``X-RateLimit-Remaining`` (the hourly budget) on every answer.
* ``GET /v2/courses`` pages with ``page[number]`` / ``page[size]`` (default 10, at most 100) in the
  envelope ``_data`` / ``_links`` / ``_meta.pagination``; ``GET /v2/courses/:id`` answers ``{"_data": ...}``.
* ``POST /v2/batch/courses`` ``{"courses": [...]}`` (1 to 100 items; an item is matched by ``id``, else by
  ``code``, else created) answers 202 with ``{"_data": {"task_id": ...}}``. The task applies the items
  ``task_seconds`` later. ``GET /v2/tasks/:id`` (shape undocumented; this one is a guess the connector must
  not depend on) answers ``status`` ``queued``, then ``processing``, then ``completed``,
  ``completed_with_errors`` or ``failed``, with ``progress`` and ``errors: [{code, id, message}]``. Items
  whose code is in ``batch_fail_codes`` fail in the task. The batch takes no duration: ``time_limit`` in an
  item is ignored, as TalentLMS documents no such field.
"""

from __future__ import annotations

import bisect
import itertools
import json
import re
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlencode

import attrs
from aiohttp import web

if TYPE_CHECKING:
    from .testing import SimCourse, TalentLMSSimulator

__all__ = ["V2Endpoints"]

_VERSION: Final = re.compile(r"\d{4}-\d{2}-\d{2}")
_BATCH_LIMIT: Final = 100
_PAGE_LIMIT: Final = 100


class _V2Error(Exception):
    def __init__(self, status: int, message: str, *, kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.message, self.kind = status, message, kind
        self.headers: dict[str, str] | None = None


@attrs.define(kw_only=True)
class _Task:
    id: int
    due: float
    items: list[dict[str, Any]]
    done: bool = False
    errors: list[dict[str, Any]] = attrs.field(factory=list)
    polls: int = 0


class V2Endpoints:
    """The v2 routes of one simulator: its tenant, counters, limits and faults are the simulator's."""

    def __init__(self, sim: TalentLMSSimulator) -> None:
        self.sim = sim
        self.tasks: dict[int, _Task] = {}
        self._open: list[_Task] = []  # not yet applied, by due time
        self._ids = itertools.count(9001)

    # -- tasks ---------------------------------------------------------------------------------------

    def settle(self) -> None:
        """Apply the batch tasks whose time has come (called on every request, v1 or v2)."""
        now = time.monotonic()
        while self._open and now >= self._open[0].due:
            task = self._open.pop(0)
            task.done = True
            for item in task.items:
                problem = self._apply(item)
                if problem:
                    task.errors.append({"code": item.get("code"), "id": item.get("id"), "message": problem})

    def _apply(self, item: Mapping[str, Any]) -> str | None:
        sim = self.sim
        code = item.get("code")
        if isinstance(code, str) and code in sim.batch_fail_codes:
            return f"The course with code {code} could not be saved"
        course: SimCourse | None = None
        if isinstance(item.get("id"), int):
            course = sim.course(item["id"])
            if course is None:
                return "The requested course does not exist"
        elif isinstance(code, str) and code:
            course = next(iter(sim.courses_with_code(code)), None)
        active = item.get("is_active")
        status = None if active is None else ("active" if active else "inactive")
        if course is None:
            if not isinstance(item.get("name"), str) or not item["name"].strip():
                return "A new course needs a name"
            sim.add_course(
                name=item["name"].strip(),
                code=code if isinstance(code, str) else "",
                description=str(item.get("description") or ""),
                status=status or "active",
                creation_date=int(time.time()),
            )
            return None
        if isinstance(item.get("name"), str) and item["name"].strip():
            course.name = item["name"].strip()
        if isinstance(item.get("description"), str):
            course.description = item["description"]
        if isinstance(code, str) and code:
            course.code = code
        if status is not None:
            course.status = status
        course.last_update_on = int(time.time())
        return None

    # -- HTTP ----------------------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        sim = self.sim
        path = request.match_info["path"].strip("/")
        route = self._route(request.method, path)
        body = await request.read() if request.method in ("POST", "PUT", "PATCH") else b""
        return await sim._serve(
            request,
            route,
            {"body": body.decode("utf-8", "replace")},
            lambda throttle, fail: self._respond(request, path, body, throttle, fail),
        )

    @staticmethod
    def _route(method: str, path: str) -> str:
        parts = path.split("/")
        if len(parts) == 2 and parts[0] in ("courses", "tasks"):
            return f"{method} /v2/{parts[0]}/id"
        return f"{method} /v2/{path}"

    def _respond(
        self, request: web.Request, path: str, body: bytes, throttle: float, fail: float
    ) -> web.Response:
        sim = self.sim
        try:
            if not sim.api_v2:
                raise _V2Error(404, "Not found")
            if not _VERSION.fullmatch(request.headers.get("X-API-Version", "")):
                raise _V2Error(400, "The X-API-Version header is required, as YYYY-MM-DD")
            if path != "health":
                if request.headers.get("X-API-Key") != sim.api_key:
                    raise _V2Error(401, "Missing or invalid API key")
                if not sim.api_enabled:
                    raise _V2Error(
                        403, "API is not enabled for the specified domain or the domain is inactive"
                    )
            self._admit(throttle)
            if fail < sim.fault_rate:
                sim.faults["500"] += 1
                raise _V2Error(500, "Internal server error", kind="api_error")
            status, answer = self._dispatch(request, path, body)
            return web.json_response(answer, status=status, headers=self._limit_headers())
        except _V2Error as err:
            if err.status == 429:
                sim.rejected_calls += 1
            headers = {**self._limit_headers(), **(err.headers or {})}
            if "application/json" not in request.headers.get("Accept", ""):
                html = f"<html><body><h1>{err.status}</h1><p>{err.message}</p></body></html>"
                return web.Response(text=html, status=err.status, content_type="text/html", headers=headers)
            return web.json_response(
                {"type": err.kind, "message": err.message}, status=err.status, headers=headers
            )

    def _admit(self, throttle: float) -> None:
        from .testing import _ApiError  # the v1 limiter's error, turned into v2's shape

        try:
            self.sim._admit(throttle)
        except _ApiError as exc:
            error = _V2Error(exc.status, exc.message, kind=exc.kind)
            error.headers = exc.headers
            raise error from None

    def _limit_headers(self) -> dict[str, str]:
        status = self.sim.rate_limit_status()
        return {"X-RateLimit-Limit": str(status["limit"]), "X-RateLimit-Remaining": str(status["remaining"])}

    def _dispatch(self, request: web.Request, path: str, body: bytes) -> tuple[int, Any]:
        method, parts = request.method, path.split("/")
        if path == "health" and method == "GET":
            return 200, {"status": "ok"}
        if parts[0] == "courses" and method == "GET":
            if len(parts) == 1:
                return 200, self._courses_page(request)
            if len(parts) == 2 and parts[1].isdigit():
                course = self.sim.course(int(parts[1]))
                if course is None:
                    raise _V2Error(404, "The requested course does not exist")
                return 200, {"_data": _course(course)}
        if path == "batch/courses" and method == "POST":
            return 202, self._batch(body)
        if parts[0] == "tasks" and len(parts) == 2 and method == "GET":
            task = self.tasks.get(int(parts[1])) if parts[1].isdigit() else None
            if task is None:
                raise _V2Error(404, "The requested task does not exist")
            return 200, self._task(task)
        raise _V2Error(404, "Not found")

    def _courses_page(self, request: web.Request) -> dict[str, Any]:
        try:
            number = int(request.query.get("page[number]", "1"))
            size = int(request.query.get("page[size]", "10"))
        except ValueError:
            raise _V2Error(400, "page[number] and page[size] must be integers") from None
        if number < 1 or not 1 <= size <= _PAGE_LIMIT:
            raise _V2Error(400, f"page[size] must be 1 to {_PAGE_LIMIT} and page[number] at least 1")
        courses = self.sim.courses
        pages = max(1, -(-len(courses) // size))
        base = str(request.url.with_query(None))

        def link(page: int) -> str | None:
            if not 1 <= page <= pages:
                return None
            return f"{base}?{urlencode({'page[number]': page, 'page[size]': size})}"

        return {
            "_data": [_course(c) for c in courses[(number - 1) * size : number * size]],
            "_links": {
                "self": link(number), "first": link(1), "last": link(pages),
                "prev": link(number - 1), "next": link(number + 1),
            },
            "_meta": {
                "pagination": {
                    "page": number, "page_size": size, "total_items": len(courses),
                    "total_pages": pages, "total_results": len(courses),
                }
            },
        }  # fmt: skip

    def _batch(self, body: bytes) -> dict[str, Any]:
        try:
            payload = json.loads(body)
        except ValueError:
            raise _V2Error(422, "The request body is not valid JSON") from None
        items = payload.get("courses") if isinstance(payload, dict) else None
        if not isinstance(items, list) or not 1 <= len(items) <= _BATCH_LIMIT:
            raise _V2Error(422, f"courses must be a list of 1 to {_BATCH_LIMIT} courses")
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                raise _V2Error(422, f"courses[{index}] must be an object")
            if "id" in item and (not isinstance(item["id"], int) or isinstance(item["id"], bool)):
                raise _V2Error(422, f"courses[{index}].id must be an integer")
            if "is_active" in item and not isinstance(item["is_active"], bool):
                raise _V2Error(422, f"courses[{index}].is_active must be a boolean")
            for name in ("name", "code", "description"):
                if name in item and not isinstance(item[name], str):
                    raise _V2Error(422, f"courses[{index}].{name} must be a string")
            if "id" not in item and not item.get("code"):
                raise _V2Error(422, f"courses[{index}] needs an id or a code")
        task = _Task(id=next(self._ids), due=time.monotonic() + self.sim.task_seconds, items=items)
        self.tasks[task.id] = task
        bisect.insort(self._open, task, key=lambda t: t.due)
        return {"_data": {"task_id": task.id}}

    def _task(self, task: _Task) -> dict[str, Any]:
        task.polls += 1
        total = len(task.items)
        if not task.done:
            status = "queued" if task.polls == 1 else "processing"
            return {"_data": {"id": task.id, "status": status, "progress": {"processed": 0, "total": total}}}
        status = (
            "completed" if not task.errors
            else "failed" if len(task.errors) == total
            else "completed_with_errors"
        )  # fmt: skip
        return {
            "_data": {
                "id": task.id,
                "status": status,
                "progress": {"processed": total, "total": total},
                "errors": task.errors,
            }
        }


def _course(course: SimCourse) -> dict[str, Any]:
    def iso(ts: int) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(ts))

    return {
        "id": course.id,
        "name": course.name,
        "code": course.code,
        "description": course.description,
        "status": course.status,
        "is_active": course.status == "active",
        "time_limit": course.time_limit,
        "creation_date": iso(course.creation_date),
        "last_updated": iso(course.last_update_on),
    }
