"""Core test configuration.

The hello-world connector in docs/examples/toylms is not pip-installed in the test environment (so it does not
appear among the real connectors in `lmsconnect plugins` or the generated docs); it is put on sys.path and
registered in code here.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import attrs
import pytest
from aiohttp import web

import lmsconnect

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "docs" / "examples" / "toylms"))

from lmsconnect_toylms import ToyConnector

lmsconnect.register_connector(ToyConnector, replace=True)


@attrs.define
class Recorder:
    """A loopback server that answers ``{}`` to anything and records each request's path."""

    url: str = ""
    paths: list[str] = attrs.Factory(list)


@pytest.fixture
async def recorder() -> AsyncIterator[Recorder]:
    """A `Recorder` on its own 127.0.0.1 port (a probe's vendor, or a host that must receive nothing)."""
    state = Recorder()

    async def record(request: web.Request) -> web.StreamResponse:
        state.paths.append(request.path)
        return web.json_response({})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    state.url = f"http://{host}:{port}"
    yield state
    await runner.cleanup()
