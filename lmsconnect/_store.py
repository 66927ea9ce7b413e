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
only its engine's SQL and locking: `SQLiteStore` (`_store_sqlite`) is the embedded default,
`PostgresStore` (`_store_postgres`, the extra ``lmsconnect[postgres]``) the one for many workers.
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
from ._errors import InvalidInput
from ._store_postgres import PostgresStore, is_postgres_url
from ._store_sqlite import SQLiteStore

__all__ = [
    "SCHEMA_VERSION",
    "BatchResult",
    "Change",
    "ChangeKind",
    "DeletionGuard",
    "LockHolder",
    "ModelFinish",
    "PostgresStore",
    "RunInfo",
    "SQLiteStore",
    "StateStore",
    "StoreError",
    "SyncInProgress",
    "fingerprint",
    "open_store",
]


@contextlib.asynccontextmanager
async def open_store(
    target: str | os.PathLike[str] = ":memory:",
    *,
    schema: str | None = None,
    shared_budgets: bool | None = None,
) -> AsyncIterator[SQLiteStore | PostgresStore]:
    """Open (creating or migrating) a state store: a SQLite file path (``":memory:"`` for a throwaway),
    or a PostgreSQL URL (``postgresql://`` or ``postgres://``; needs ``pip install
    "lmsconnect[postgres]"``) whose tables live in `schema` (default ``lmsconnect``; also
    ``?schema=name`` in the URL).

    >>> async with lmsconnect.open_store("lms.sqlite") as store:
    ...     await lmsconnect.sync(lms, store)
    >>> async with lmsconnect.open_store("postgresql://lms@db.internal/app") as store:
    ...     await lmsconnect.sync(lms, store)

    ``shared_budgets=True`` (PostgreSQL only; or ``?budgets=shared`` in the URL): every `sync` into the
    store counts the connector's calls in rate budgets shared with every process that does, under the
    connection key (see `PostgresStore`), unless the connector has ``connect(budget=...)``.
    """
    store: SQLiteStore | PostgresStore
    if is_postgres_url(target):
        store = PostgresStore(os.fspath(target), schema=schema, shared_budgets=shared_budgets)
    elif schema is not None:
        raise InvalidInput("schema= applies to PostgreSQL stores only", field="schema")
    elif shared_budgets:
        raise InvalidInput(
            "shared_budgets= needs a PostgreSQL store (the processes sharing a budget need one database)",
            field="shared_budgets",
        )
    else:
        store = SQLiteStore(target)
    await store.open()
    try:
        yield store
    finally:
        with anyio.CancelScope(shield=True):
            await store.aclose()
