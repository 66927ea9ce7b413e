"""The multi-tenant TalentLMS simulator: one server, each API key its own tenant."""

from __future__ import annotations

import pytest
from lmsconnect_talentlms import TalentLMSConnector
from lmsconnect_talentlms.multitenant import MultiTenantTalentLMS

import lmsconnect

NO_RETRY = lmsconnect.HttpOptions(max_attempts=1)


async def test_each_key_is_a_tenant_with_its_own_data_and_limits() -> None:
    """Two keys on one server read different users; each has its own hourly plan (one spent, the other
    not); an unknown key is refused as TalentLMS refuses one (authentication error)."""
    tenants = {"key-acme": {}, "key-globex": {"hourly_limit": 3}}
    async with MultiTenantTalentLMS(tenants, users=5) as sim:
        users = {}
        for key in tenants:
            async with lmsconnect.connect("talentlms", **sim.tenant_config(key)) as lms:
                users[key] = sorted([u.work_email or "" async for u in lms.list(lmsconnect.User)])
        assert len(users["key-acme"]) == len(users["key-globex"]) == 5
        assert users["key-acme"] != users["key-globex"]

        plans = {}
        for key in tenants:
            async with lmsconnect.connect("talentlms", http=NO_RETRY, **sim.tenant_config(key)) as lms:
                try:
                    for _ in range(3):
                        await lms.passthrough("GET", "/v1/users/id:1")
                except lmsconnect.RateLimited:
                    plans[key] = "spent"
                else:
                    plans[key] = "left"
                assert isinstance(lms, TalentLMSConnector)
                plans[f"{key} limit"] = lms.plan_limit
        # globex's plan of 3 calls was spent by its read above; acme's 2,000 were not.
        assert plans == {"key-acme": "left", "key-acme limit": 2000, "key-globex": "spent",
                         "key-globex limit": 3}  # fmt: skip
        assert sim.rejected == 0  # the connector read the plan from /v1/ratelimit and kept to it

        config = {**sim.tenant_config("key-acme"), "api_key": "key-nobody"}
        async with lmsconnect.connect("talentlms", http=NO_RETRY, **config) as lms:
            with pytest.raises(lmsconnect.LMSConnectError) as info:
                await lms.passthrough("GET", "/v1/users/id:1")
        assert info.value.code == "REMOTE.AUTHENTICATION"
