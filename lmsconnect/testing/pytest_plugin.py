"""pytest plugin (entry point ``pytest11``): the ``lms_simulator`` fixture factory.

>>> async def test_users(lms_simulator):
...     sim = await lms_simulator("moodle", users=10)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio

from . import load_simulator

_LOOP_SCOPE = "asyncio_default_fixture_loop_scope"


def pytest_load_initial_conftests(
    early_config: pytest.Config, parser: pytest.Parser, args: list[str]
) -> None:
    """Give pytest-asyncio's ``asyncio_default_fixture_loop_scope`` the default "function", the scope of
    every fixture of the kit, so that a plugin project with no pytest configuration runs without
    pytest-asyncio's "is unset" deprecation warning. A project's own setting still wins: this changes
    only the default used when no configuration file sets it.

    Called for plugins installed through an entry point once they are all registered (pytest-asyncio's
    options are declared by then) and before any plugin is configured (before the value is read).
    """
    if early_config.pluginmanager.hasplugin("asyncio"):
        parser.addini(
            _LOOP_SCOPE,
            type="string",
            help="default scope of the asyncio event loop used to execute async fixtures (lmsconnect's "
            "conformance kit sets the default 'function')",
            default="function",
        )


@pytest_asyncio.fixture(loop_scope="function")
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
