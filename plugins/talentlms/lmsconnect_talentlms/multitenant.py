"""Many simulated TalentLMS tenants behind one server: each API key is its own tenant, with its own data
and its own rate limits (200 calls per sliding 5 s, the hourly plan budget), as on TalentLMS, where each
domain is a tenant with its own keys and limits. One process and one port instead of one simulator per
tenant, for benchmarks and tests with hundreds of tenants:

>>> async with MultiTenantTalentLMS({"key-acme": {}, "key-globex": {"hourly_limit": 30}}) as sim:
...     config = sim.tenant_config("key-acme")     # for lmsconnect.connect("talentlms", **config)

Each tenant is a `TalentLMSSimulator` (never started as a server of its own); this server routes each
request to the tenant its Basic-auth key names (an unknown key is TalentLMS's 401) and can record when
each tenant admitted a call (``record``), so that a test counts admitted calls per window. Only the
API v1 routes (``/api/v1/...``) are routed.
"""

from __future__ import annotations

import base64
import binascii
import collections
import time
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from lmsconnect.testing import SimulatorServer

from .testing import TalentLMSSimulator

__all__ = ["MultiTenantTalentLMS"]


class MultiTenantTalentLMS(SimulatorServer):
    """`tenants` maps each API key to that tenant's `TalentLMSSimulator` options (``seed`` defaults to
    the tenant's position, so tenants hold different data); ``options`` apply to every tenant."""

    url_path = "/api"

    def __init__(self, tenants: Mapping[str, Mapping[str, Any]], **options: Any) -> None:
        self.tenants = {
            key: TalentLMSSimulator(api_key=key, **{"seed": i, **options, **own})
            for i, (key, own) in enumerate(tenants.items())
        }
        #: Monotonic times of admitted (not 429) calls, per API key; kept only while ``record`` is set.
        self.admitted: dict[str, list[float]] = collections.defaultdict(list)
        self.record = False

    def tenant_config(self, api_key: str) -> dict[str, Any]:
        """Keyword arguments for ``lmsconnect.connect("talentlms", **config)`` to reach one tenant."""
        if api_key not in self.tenants:
            raise KeyError(f"no simulated tenant has the API key {api_key!r}")
        return {"base_url": self.url, "api_key": api_key}

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/api/v1/{action}", self._route)
        app.router.add_route("*", "/api/v1/{action}/{params:.*}", self._route)
        return app

    def _tenant(self, request: web.Request) -> TalentLMSSimulator | None:
        scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            key = base64.b64decode(encoded, validate=True).decode("utf-8").partition(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            return None
        return self.tenants.get(key)

    async def _route(self, request: web.Request) -> web.StreamResponse:
        tenant = self._tenant(request)
        if tenant is None:
            body = {"error": {"type": "invalid_api_key", "message": "Invalid API key"}}
            return web.json_response(body, status=401)
        response = await tenant._handle(request)
        if self.record and response.status != 429 and request.match_info["action"] != "ratelimit":
            self.admitted[tenant.api_key].append(time.monotonic())
        return response

    @property
    def calls(self) -> int:
        """Calls every tenant answered, except the free ``GET /v1/ratelimit``."""
        return sum(t.calls - t.calls_by_route["GET /v1/ratelimit"] for t in self.tenants.values())

    @property
    def rejected(self) -> int:
        """429s every tenant answered."""
        return sum(t.rejected_calls for t in self.tenants.values())
