"""The benchmark's tenants on `lmsconnect_talentlms.multitenant.MultiTenantTalentLMS` (one simulator
server, each API key its own tenant with its own data and rate limits)."""

from __future__ import annotations

from typing import Any

from lmsconnect_talentlms.multitenant import MultiTenantTalentLMS as _Server

__all__ = ["MultiTenantTalentLMS", "api_key_of"]


def api_key_of(tenant: str) -> str:
    """The simulated API key of a tenant (a benchmark's resolver computes it; a real one would not)."""
    return f"bench-key-{tenant}"


class MultiTenantTalentLMS(_Server):
    """One tenant per name in `tenants`, keyed `api_key_of(name)`; ``options`` apply to every tenant."""

    def __init__(self, tenants: list[str], **options: Any) -> None:
        super().__init__({api_key_of(t): {} for t in tenants}, **options)
