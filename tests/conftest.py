"""Core test configuration.

The hello-world connector in docs/examples/toylms is not pip-installed in the test environment (so it does not
appear among the real connectors in `lmsconnect plugins` or the generated docs); it is put on sys.path and
registered in code here.
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

import lmsconnect

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "docs" / "examples" / "toylms"))

from lmsconnect_toylms import ToyConnector

lmsconnect.register_connector(ToyConnector, replace=True)



# -- state stores: the store and sync tests run against every engine ------------------------------------

STORE_ENGINES = ["sqlite"]


@pytest.fixture(params=STORE_ENGINES)
def store_location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """What `open_store` takes for a fresh, empty store of each engine (a file; several opens share it)."""
    return str(tmp_path / "store.db")


@pytest.fixture
async def store(store_location: str) -> AsyncIterator[Any]:
    async with lmsconnect.open_store(store_location) as s:
        yield s


RawSQL = Callable[..., list[tuple[Any, ...]]]


@pytest.fixture
def raw_sql(store_location: str) -> RawSQL:
    """Run SQL on the store behind its back (to corrupt it, or to look inside): the last statement's rows."""

    def run(*statements: str) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(store_location, isolation_level=None)
        try:
            rows: list[tuple[Any, ...]] = []
            for sql in statements:
                rows = conn.execute(sql).fetchall()
            return rows
        finally:
            conn.close()

    return run
