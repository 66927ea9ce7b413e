"""Offline test doubles: start any installed connector's simulator, and the conformance kit.

>>> async with lmsconnect.testing.simulator("moodle", users=50) as sim:
...     async with lmsconnect.connect("moodle", **sim.connect_config) as lms:
...         ...

`SimulatorServer` is the base class plugin simulators build on: it owns the aiohttp lifecycle (start,
stop, ``async with``, ``url``); a simulator supplies ``make_app()``.

Tests that attack: `HostileProxy` sits between a connector and its simulator and breaks about a third of
the answers, reproducibly for a seed; `WitnessServer` records any request sent off the configured origin;
`fuzz_connector` runs a connector's whole public API through both and counts what went wrong
(`FuzzReport`)::

    report = await lmsconnect.testing.fuzz_connector("moodle", seeds=[1, 2])
    assert report.clean, report.summary()

The conformance kit (`ConformanceSuite`) needs pytest; it is imported lazily so that the simulator helpers
work without it.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from .._errors import ConfigurationError
from .._registry import registry
from ._fuzz import Failure, FuzzReport, fuzz_connector
from ._hostile import AppliedMutation, HostileProxy, SeenRequest, WitnessServer
from ._server import SimulatorServer

if TYPE_CHECKING:
    from .conformance import ConformanceSuite

__all__ = [
    "AppliedMutation",
    "ConformanceSuite",
    "Failure",
    "FuzzReport",
    "HostileProxy",
    "SeenRequest",
    "Simulator",
    "SimulatorServer",
    "WitnessServer",
    "fuzz_connector",
    "load_simulator",
    "simulator",
]


@runtime_checkable
class Simulator(Protocol):
    """What a plugin's simulator offers (see docs/plugin-guide.md)."""

    calls: int

    async def start(self, host: str = ..., port: int = ...) -> None: ...
    async def stop(self) -> None: ...
    @property
    def url(self) -> str: ...
    @property
    def connect_config(self) -> dict[str, Any]: ...


def load_simulator(slug: str) -> type[Any]:
    """The simulator class a connector's spec names (``"module:Class"``)."""
    cls = registry.get(slug)
    target = cls.spec.simulator
    if not target:
        raise ConfigurationError(f"the {slug!r} connector ships no simulator", connector=slug)
    module_name, _, attr = target.partition(":")
    try:
        return getattr(importlib.import_module(module_name), attr)  # type: ignore[no-any-return]
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(
            f"the {slug!r} connector names simulator {target!r}, which cannot be loaded: {exc}",
            connector=slug,
        ) from None


@contextlib.asynccontextmanager
async def simulator(
    slug: str, *, host: str = "127.0.0.1", port: int = 0, **options: Any
) -> AsyncIterator[Any]:
    """Run `slug`'s simulator on loopback for the duration of the block."""
    sim = load_simulator(slug)(**options)
    await sim.start(host, port)
    try:
        yield sim
    finally:
        await sim.stop()


def __getattr__(name: str) -> Any:
    if name == "ConformanceSuite":
        from .conformance import ConformanceSuite

        return ConformanceSuite
    raise AttributeError(name)
