"""Many TalentLMS tenants behind one simulator server: each API key is its own tenant, with its own data
and its own rate limits (200 calls per sliding 5 s, the hourly plan budget), as on TalentLMS where each
domain is a tenant. One process and one port instead of one simulator process per tenant.

The per-tenant behaviour is `TalentLMSSimulator`'s own (one instance per tenant, never started as a
server); this module only routes each request to the tenant its Basic-auth key names, and records when
each tenant admitted a call (the contention run counts admitted calls per window from it).
"""

from __future__ import annotations

import base64
import binascii
import collections
import time
from typing import Any

from aiohttp import web
from lmsconnect_talentlms.testing import TalentLMSSimulator

from lmsconnect.testing import SimulatorServer

__all__ = ["MultiTenantTalentLMS", "api_key_of"]


def api_key_of(tenant: str) -> str:
    """The simulated API key of a tenant (a benchmark's resolver computes it; a real one would not)."""
    return f"bench-key-{tenant}"


class MultiTenantTalentLMS(SimulatorServer):
    url_path = "/api"

    def __init__(self, tenants: list[str], **options: Any) -> None:
        self.tenants = {
            api_key_of(t): TalentLMSSimulator(api_key=api_key_of(t), seed=i, **options)
            for i, t in enumerate(tenants)
        }
        #: Monotonic times of admitted (non-429) calls, per API key; kept only when ``record`` is set.
        self.admitted: dict[str, list[float]] = collections.defaultdict(list)
        self.record = False

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
        return sum(t.calls - t.calls_by_route["GET /v1/ratelimit"] for t in self.tenants.values())

    @property
    def rejected(self) -> int:
        return sum(t.rejected_calls for t in self.tenants.values())
