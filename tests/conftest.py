"""Core test configuration.

The hello-world connector in docs/examples/toylms is not pip-installed in the test environment (so it does not
appear among the real connectors in `lmsconnect plugins` or the generated docs); it is put on sys.path and
registered in code here.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from aiohttp import web

import lmsconnect

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "docs" / "examples" / "toylms"))

from lmsconnect_toylms import ToyConnector

lmsconnect.register_connector(ToyConnector, replace=True)



# -- state stores: the store and sync tests run against every engine ------------------------------------

STORE_ENGINES = ["sqlite", "postgres"]


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server for the session: $LMSCONNECT_TEST_PG_URL, or one started in a temporary
    directory (skipped locally without server binaries; a failure in CI, where it must run)."""
    given = os.environ.get("LMSCONNECT_TEST_PG_URL")
    if given:
        yield given
        return
    from lmsconnect.testing._postgres import HOW_TO_GET_ONE, TemporaryPostgres, find_bindir

    if find_bindir() is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {HOW_TO_GET_ONE} (.ci/run installs them)")
        pytest.skip(HOW_TO_GET_ONE)
    with TemporaryPostgres() as url:
        yield url


@pytest.fixture(params=STORE_ENGINES)
def store_location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """What `open_store` takes for a fresh, empty store of each engine: a SQLite file, or a PostgreSQL URL
    with a schema of its own (several opens share it)."""
    if request.param == "sqlite":
        return str(tmp_path / "store.db")
    url: str = request.getfixturevalue("postgres_url")
    return f"{url}{'&' if '?' in url else '?'}schema=t_{uuid.uuid4().hex[:16]}"


def is_postgres(location: str) -> bool:
    return location.startswith(("postgresql://", "postgres://"))


@pytest.fixture
async def store(store_location: str) -> AsyncIterator[Any]:
    async with lmsconnect.open_store(store_location) as s:
        yield s


RawSQL = Callable[..., list[tuple[Any, ...]]]


@pytest.fixture
def raw_sql(store_location: str) -> RawSQL:
    """Run SQL on the store behind its back (to corrupt it, or to look inside): the last statement's rows
    (for PostgreSQL, in the store's schema)."""

    def run(*statements: str) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = []
        if is_postgres(store_location):
            import psycopg

            url, _, schema = store_location.rpartition("schema=")
            with psycopg.connect(url.rstrip("?&"), autocommit=True) as conn:
                conn.execute(f'SET search_path TO "{schema}"')
                for sql in statements:
                    cur = conn.execute(sql)
                    rows = cur.fetchall() if cur.description else []
            return rows
        conn = sqlite3.connect(store_location, isolation_level=None)
        try:
            for sql in statements:
                rows = conn.execute(sql).fetchall()
            return rows
        finally:
            conn.close()

    return run


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
