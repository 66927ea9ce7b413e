"""An offline Toy LMS: the simulator the toy connector, its tests and the conformance kit run against."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ClassVar

from aiohttp import web

from lmsconnect.testing import SimulatorServer

__all__ = ["ToySimulator"]

PAGE = 50
ALL_SCOPES = ("users:read", "courses:read", "enrollments:read", "courses:write", "enrollments:write")


class ToySimulator(SimulatorServer):
    """Toy LMS on 127.0.0.1. ``scopes`` restricts the token; ``fail_next`` queues error statuses."""

    option_help: ClassVar[Mapping[str, str]] = {
        "token": "the bearer token the simulator accepts",
        "scopes": "scopes the token has, comma-separated; other routes answer 403",
    }

    def __init__(
        self,
        *,
        users: int = 12,
        courses: int = 5,
        enrollments: int = 20,
        seed: int = 0,
        latency: float = 0.0,
        token: str = "toy-secret-token",
        scopes: tuple[str, ...] = ALL_SCOPES,
    ) -> None:
        rng = random.Random(seed)
        self.token = token
        self.scopes = set(scopes)
        self.latency = latency
        self.calls = 0
        self.calls_by_route: Counter[str] = Counter()
        self.fail_next: list[int] = []
        self.users = {
            i: {"id": i, "first": f"First{i}", "last": f"Last{i}", "email": f"user{i}@toy.example",
                "active": rng.random() > 0.2}
            for i in range(1, users + 1)
        }
        self.courses = {
            # Odd courses were pushed by an integration and carry its reference.
            i: {"id": i, "ref": f"ext-{i}" if i % 2 else "", "title": f"Course {i}",
                "description": f"About {i}",
                "published": rng.random() > 0.3, "created": 1_700_000_000 + i * 86_400}
            for i in range(1, courses + 1)
        }
        pairs = {(rng.randint(1, courses), rng.randint(1, users)) for _ in range(enrollments)} if (
            users and courses) else set()
        self.enrollments = {
            (c, u): {"course": c, "user": u, "done": 1_710_000_000 + u if rng.random() > 0.5 else 0}
            for c, u in sorted(pairs)
        }

    @property
    def connect_config(self) -> dict[str, Any]:
        return {"base_url": self.url, "token": self.token}

    # start/stop, `async with` and `url` come from SimulatorServer; the simulator only builds its app.
    def make_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        app.add_routes([
            web.get("/api/me", self._me),
            web.get("/api/users", self._list("users")),
            web.get("/api/courses", self._list("courses")),
            web.post("/api/courses", self._create_course),
            web.get("/api/enrollments", self._enrollments),
            web.post("/api/enrollments", self._enroll),
        ])
        return app

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        self.calls += 1
        self.calls_by_route[f"{request.method} {request.path}"] += 1
        if self.latency:
            await asyncio.sleep(self.latency)
        if self.fail_next:
            status = self.fail_next.pop(0)
            headers = {"Retry-After": "0"} if status == 429 else {}
            return web.json_response({"error": f"injected {status}"}, status=status, headers=headers)
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"error": "invalid token"}, status=401)
        return await handler(request)

    def _need(self, scope: str) -> None:
        if scope not in self.scopes:
            raise web.HTTPForbidden(
                text=f'{{"error": "token lacks {scope}", "scope": "{scope}"}}',
                content_type="application/json",
            )

    async def _me(self, request: web.Request) -> web.Response:
        return web.json_response({"scopes": sorted(self.scopes)})

    def _list(self, kind: str) -> Any:
        async def handler(request: web.Request) -> web.Response:
            self._need(f"{kind}:read")
            rows = list(getattr(self, kind).values())
            page = int(request.query.get("page", "1"))
            pages = max(1, -(-len(rows) // PAGE))
            return web.json_response(
                {"data": rows[(page - 1) * PAGE : page * PAGE], "page": page, "pages": pages}
            )

        return handler

    async def _create_course(self, request: web.Request) -> web.Response:
        self._need("courses:write")
        body = await request.json()
        if any(c["ref"] == body["ref"] for c in self.courses.values()):
            return web.json_response({"error": "ref exists"}, status=409)
        new_id = max(self.courses, default=0) + 1
        self.courses[new_id] = {"id": new_id, "ref": body["ref"], "title": body["title"],
                                "description": body.get("description", ""), "published": True,
                                "created": 1_800_000_000}
        return web.json_response(self.courses[new_id], status=201)

    async def _enrollments(self, request: web.Request) -> web.Response:
        self._need("enrollments:read")
        course = int(request.query["course"])
        if course not in self.courses:
            return web.json_response({"error": "no such course"}, status=404)
        return web.json_response({"data": [e for (c, _), e in self.enrollments.items() if c == course]})

    async def _enroll(self, request: web.Request) -> web.Response:
        self._need("enrollments:write")
        body = await request.json()
        course, user = int(body["course"]), int(body["user"])
        if course not in self.courses or user not in self.users:
            return web.json_response({"error": "no such user or course"}, status=404)
        self.enrollments[(course, user)] = {"course": course, "user": user, "done": 0}
        return web.json_response(self.enrollments[(course, user)], status=201)
