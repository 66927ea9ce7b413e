"""The token cache: one token request however many callers, renewal ahead of expiry and after a 401."""

from __future__ import annotations

import asyncio

from lmsconnect_360learning._auth import TokenCache


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class TestTokenCache:
    async def test_concurrent_callers_share_one_fetch(self) -> None:
        """Twenty callers finding no token trigger one token request."""
        fetched: list[int] = []

        async def fetch() -> tuple[str, float]:
            fetched.append(1)
            await asyncio.sleep(0.01)
            return f"t{len(fetched)}", 3600.0

        cache = TokenCache(fetch)
        tokens = await asyncio.gather(*(cache.get() for _ in range(20)))
        assert set(tokens) == {"t1"} and len(fetched) == 1

    async def test_renewed_a_tenth_of_the_lifetime_early_at_most_a_minute(self) -> None:
        """A one-hour token is renewed a minute before it expires; a 10 s one, a second before."""
        clock = Clock()
        lifetimes = iter([3600.0, 3600.0, 10.0, 10.0])

        async def fetch() -> tuple[str, float]:
            return f"t{clock.now}", next(lifetimes)

        cache = TokenCache(fetch, clock=clock)
        first = await cache.get()
        clock.now += 3539
        assert await cache.get() == first
        clock.now += 2
        second = await cache.get()
        assert second != first
        clock.now += 3600  # expired: the next token lives 10 s
        third = await cache.get()
        clock.now += 8.9
        assert await cache.get() == third
        clock.now += 0.2
        assert await cache.get() != third

    async def test_invalidate_only_the_token_that_failed(self) -> None:
        """A 401 on an old token does not throw away a newer one fetched meanwhile."""
        count = 0

        async def fetch() -> tuple[str, float]:
            nonlocal count
            count += 1
            return f"t{count}", 3600.0

        cache = TokenCache(fetch)
        old = await cache.get()
        assert cache.last_sent() == old
        cache.invalidate(old)
        new = await cache.get()
        cache.invalidate(old)
        assert await cache.get() == new and count == 2
