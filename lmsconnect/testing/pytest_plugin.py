"""pytest plugin (entry point ``pytest11``): the ``lms_simulator`` fixture factory.

>>> async def test_users(lms_simulator):
...     sim = await lms_simulator("moodle", users=10)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest_asyncio

from . import load_simulator


@pytest_asyncio.fixture
async def lms_simulator() -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    """Start simulators by slug on loopback; all are stopped when the test ends."""
    started: list[Any] = []

    async def start(slug: str, **options: Any) -> Any:
        sim = load_simulator(slug)(**options)
        await sim.start("127.0.0.1", 0)
        started.append(sim)
        return sim

    try:
        yield start
    finally:
        for sim in reversed(started):
            await sim.stop()
