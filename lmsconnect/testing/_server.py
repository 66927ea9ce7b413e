"""`SimulatorServer`: the aiohttp lifecycle every plugin simulator shares; a simulator only builds its app."""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Mapping
from types import TracebackType
from typing import Any, ClassVar, TypeVar

from aiohttp import web

__all__ = ["SimulatorServer"]

_S = TypeVar("_S", bound="SimulatorServer")


class SimulatorServer(abc.ABC):
    """Serve the app `make_app` builds on loopback; ``start``/``stop``, ``async with`` and ``url``.

    Subclasses keep their own state, middlewares and counters (``calls``, ``calls_by_route``) and add
    ``connect_config``. They need not call ``super().__init__()``. ``url_path`` is appended to the base
    URL for vendors whose API lives under a prefix (e.g. ``"/api"``).
    """

    #: Appended to ``http://host:port`` in :attr:`url`, e.g. ``"/api"``.
    url_path: ClassVar[str] = ""
    #: Options ``lmsconnect demo`` adds to the sizes it picks, e.g. a vendor's background job sped up so
    #: that asynchronous behaviour shows within seconds.
    demo_options: ClassVar[Mapping[str, Any]] = {}

    #: What each keyword argument of ``__init__`` means, one line each; ``lmsconnect simulate SLUG
    #: --help-options`` shows it beside the type and default read from the signature. A subclass lists its
    #: own options; the ones every simulator takes are described here.
    option_help: ClassVar[Mapping[str, str]] = {
        "users": "number of users in the generated tenant",
        "courses": "number of courses in the generated tenant",
        "enrollments": "number of enrolments (progressions) in the generated tenant",
        "seed": "seed of the generated data: the same seed gives the same tenant",
        "latency": "seconds added to every response",
    }

    # Class-level defaults so a subclass's own __init__ need not call ours.
    _runner: web.AppRunner | None = None
    _url: str | None = None

    @abc.abstractmethod
    def make_app(self) -> web.Application:
        """A new application with the simulator's routes and middlewares; called by every `start`."""

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Serve on ``host:port`` (``port=0`` picks a free port); :attr:`url` then says where."""
        if self._runner is not None:
            raise RuntimeError(f"{type(self).__name__} is already started (at {self._url})")
        runner = web.AppRunner(self.make_app(), access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        bound_port = runner.addresses[0][1]
        netloc = f"[{host}]" if ":" in host else host
        self._url = f"http://{netloc}:{bound_port}{self.url_path}"

    async def stop(self) -> None:
        """Stop serving: close every connection at once (a request in progress gets no answer) and
        return once their sockets are closed, so that none is left to the garbage collector however
        soon the event loop ends. Safe to call twice; :attr:`url` keeps the last address."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        server = runner.server
        # aiohttp's own shutdown waits up to a minute per connection whose client stopped reading, and
        # then leaves that socket open until its unsent answer drains: a simulator has nothing to finish.
        _abort(server)
        await runner.cleanup()
        _abort(server)  # a connection accepted while the listener closed
        # abort() closes each socket in a callback of the event loop: let those callbacks run now.
        await asyncio.sleep(0)

    async def __aenter__(self: _S) -> _S:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        """Where the simulator serves, e.g. ``http://127.0.0.1:54321`` (plus :attr:`url_path`)."""
        if self._url is None:
            raise RuntimeError(f"{type(self).__name__} is not started: call start() or use 'async with'")
        return self._url


def _abort(server: web.Server | None) -> None:
    for handler in server.connections if server is not None else ():
        if handler.transport is not None:
            handler.transport.abort()
