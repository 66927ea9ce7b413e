"""The state store: what `lmsconnect.sync` remembers between reads, and the change feed it writes.

>>> async with lmsconnect.open_store("lms.sqlite") as store:
...     report = await lmsconnect.sync(lms, store)
...     async for change in store.changes(since=cursor):
...         print(change.cursor, change.kind, change.model, change.id)

Per connection (a key naming one tenant of one connector) and model, a store keeps the latest unified
record (``remote_data`` included), a fingerprint of its unified fields, ``changed_at`` and
``remote_deleted_at``; and an append-only change log whose cursor only grows.

`StateStore` is the seam: the sync engine talks to a store only through it, in coarse operations that
each are one transaction. What a change is lives in `_changefeed` (shared by every store); each store is
only its engine's SQL and locking: `SQLiteStore` (`_store_sqlite`) is the embedded default.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator

import anyio

from ._changefeed import (
    SCHEMA_VERSION,
    BatchResult,
    Change,
    ChangeKind,
    DeletionGuard,
    LockHolder,
    ModelFinish,
    RunInfo,
    StateStore,
    StoreError,
    SyncInProgress,
    fingerprint,
)
from ._store_sqlite import SQLiteStore

__all__ = [
    "SCHEMA_VERSION",
    "BatchResult",
    "Change",
    "ChangeKind",
    "DeletionGuard",
    "LockHolder",
    "ModelFinish",
    "RunInfo",
    "SQLiteStore",
    "StateStore",
    "StoreError",
    "SyncInProgress",
    "fingerprint",
    "open_store",
]


@contextlib.asynccontextmanager
async def open_store(path: str | os.PathLike[str] = ":memory:") -> AsyncIterator[SQLiteStore]:
    """Open (creating or migrating) the SQLite state store at `path` (``":memory:"`` for a throwaway).

    >>> async with lmsconnect.open_store("lms.sqlite") as store:
    ...     await lmsconnect.sync(lms, store)
    """
    store = SQLiteStore(path)
    await store.open()
    try:
        yield store
    finally:
        with anyio.CancelScope(shield=True):
            await store.aclose()
