"""The PostgreSQL state store: PostgreSQL's SQL, transactions and locking for `_changefeed`'s change feed.

For several workers on several machines syncing into one database. Open it by URL:

>>> async with lmsconnect.open_store("postgresql://lms@db.internal/app?schema=lmsconnect") as store:
...     await lmsconnect.sync(lms, store)

Driver: psycopg 3 with its async connection pool (the optional extra ``lmsconnect[postgres]``; importing
lmsconnect does not need it), ``prepare_threshold=None`` so that it works behind PgBouncer in transaction
mode. Every operation is one transaction on a pooled connection; nothing lives in a session.

What differs from SQLite, and how:

- **The lock** is a lease row whose times come from the database's clock (``clock_timestamp()``), so
  clock skew between worker hosts does not matter; a holder that died is taken over when its lease runs
  out. Every mutating transaction starts by taking the connection's advisory lock in shared mode, then
  reads the lock row: it fails when the lock is not its owner's; a takeover takes the same advisory lock
  exclusively, so it waits until every transaction that passed the check has committed, and a sync whose
  lease was taken over can never write after the new holder started. (An advisory lock rather than
  ``SELECT ... FOR SHARE``: a row lock is written to the WAL, which would make every batch, even one
  that changes nothing, wait for a disk flush at commit.)
- **The change feed never skips, and writers do not take turns.** Sequence values are handed out
  before commit, so with several writers a consumer could read cursor 101 (committed) and save it before
  cursor 100 commits. A writer therefore does not give its changes a cursor: it appends them to
  ``pending_changes`` (numbered by a sequence, in the order it wrote them), with no lock, in the batch's
  own transaction. Cursors are given by `_sequence`: one statement (the function ``sequence_changes``,
  run in autocommit, so the server commits it without waiting for the client) that takes a store-wide
  advisory lock, moves every committed pending row into ``changes`` with the cursors ``max + 1, 2, ...``
  in the order the rows were written, and commits; PostgreSQL makes a commit visible before it releases
  the transaction's locks, and each statement of the function sees what committed before it. So cursors
  are assigned in the order the moves commit and without gaps: whoever can see cursor n can see every
  cursor below it. Every reader of the log (`changes`, `last_cursor`) moves the pending rows first, so it
  sees every change committed before it asked; and a batch that wrote changes moves them right after
  its commit, so, as on SQLite, its changes have cursors when `apply_batch` returns (`finish_run` moves
  any left behind by a batch cancelled between the two). The lock is held for one server-side statement,
  never across a round trip to a client, and batches no longer wait for each other's commits.
  Why not the alternatives: the first version took that lock inside every batch transaction, just
  before its append, until its COMMIT; the lock then spanned the client's round trip to send COMMIT, and
  with a hundred syncs on busy event loops the batches of all tenants queued behind it (4 workers synced
  no faster than 1). Cursors per connection would lose the store-wide feed (`changes()` without a
  connection). Delivering only rows older than the oldest running transaction (``pg_current_snapshot()``)
  would need cursors with gaps (transaction ids) and would stall the feed behind any long transaction
  in the service's database.
- **What a read saw** is kept in an UNLOGGED table (``seen``) instead of SQLite's temporary table,
  because consecutive transactions of a sync run on different pooled connections.
"""

from __future__ import annotations

import builtins
import datetime as dt
import hashlib
import os
import re
import socket
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, TypeVar

import anyio.to_thread

from ._changefeed import (
    PAGE,
    RUN_FIELDS,
    SCHEMA_VERSION,
    BatchResult,
    DeletionGuard,
    FeedReader,
    LockHolder,
    ModelFinish,
    RunInfo,
    StoreError,
    check_schema_version,
    deletions_kept,
    iso,
    lock_lost,
    plan_batch,
    serialise,
    store_converter,
)
from ._errors import ConfigurationError, InvalidInput
from ._models import ModelName, Record

if TYPE_CHECKING:
    import psycopg
    import psycopg_pool

    from ._budget_postgres import PostgresBudgets
    from ._http import SharedBudget

__all__ = ["DEFAULT_SCHEMA", "PostgresStore", "is_postgres_url"]

T = TypeVar("T")
Cursor = Any  # psycopg.AsyncCursor[tuple[Any, ...]]; psycopg is imported only when a store opens

DEFAULT_SCHEMA: Final = "lmsconnect"
_SCHEMES: Final = ("postgresql://", "postgres://")
_IDENTIFIER: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_HOST: Final = socket.gethostname()
_EXTRA_HINT: Final = 'Install the PostgreSQL extra: pip install "lmsconnect[postgres]"'


def is_postgres_url(target: object) -> bool:
    return isinstance(target, str) and target.startswith(_SCHEMES)


# Query parameters of a store URL that are lmsconnect's, not libpq's.
_OWN_PARAMS: Final = ("schema", "budgets")


def url_option(url: str, name: str) -> str | None:
    """The value of lmsconnect's own query parameter `name` (see `_OWN_PARAMS`) in a store URL."""
    query = urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query, keep_blank_values=True)
    return next((v for k, v in query if k == name), None)


def _split_url(url: str) -> tuple[str, str | None, str]:
    """(URL for psycopg, the ``schema`` query parameter if any, the URL for messages: no password)."""
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    schema = url_option(url, "schema")
    rest = urllib.parse.urlencode([(k, v) for k, v in query if k not in _OWN_PARAMS])
    clean = urllib.parse.urlunsplit(parts._replace(query=rest))
    host = parts.hostname or "localhost"
    shown = f"{parts.scheme}://{parts.username + '@' if parts.username else ''}{host}"
    shown += f":{parts.port}" if parts.port else ""
    shown += parts.path
    return clean, schema, shown


def _lock_key(purpose: str, schema: str) -> int:
    digest = hashlib.blake2b(f"lmsconnect:{purpose}:{schema}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


# -- migrations: PostgreSQL's SQL for each schema version of _changefeed -------------------------------
# "{s}" is the quoted schema. Text that is sorted or compared (connection, model, ids) uses the "C"
# collation: byte order, as SQLite's, so `list` orders records the same way on both engines.

_V1: Final = (
    """CREATE TABLE {s}.records (
        connection text COLLATE "C" NOT NULL,
        model text COLLATE "C" NOT NULL,
        id text COLLATE "C" NOT NULL,
        remote_id text NOT NULL,
        fingerprint text NOT NULL,
        data_hash text NOT NULL,
        changed_at timestamptz NOT NULL,
        remote_deleted_at timestamptz,
        first_seen_at timestamptz NOT NULL,
        data text NOT NULL,
        PRIMARY KEY (connection, model, id)
    )""",
    "CREATE INDEX records_by_model ON {s}.records (model, connection, id)",
    """CREATE TABLE {s}.changes (
        cursor bigint PRIMARY KEY,
        connection text COLLATE "C" NOT NULL,
        model text NOT NULL,
        record_id text COLLATE "C" NOT NULL,
        remote_id text NOT NULL,
        kind text NOT NULL CHECK (kind IN ('created', 'updated', 'deleted')),
        at timestamptz NOT NULL,
        run_id bigint NOT NULL
    )""",
    "CREATE INDEX changes_by_connection ON {s}.changes (connection, cursor)",
    "CREATE INDEX changes_by_run ON {s}.changes (run_id, model, kind)",
    """CREATE TABLE {s}.runs (
        run_id bigserial PRIMARY KEY,
        connection text COLLATE "C" NOT NULL,
        slug text NOT NULL,
        status text NOT NULL CHECK (status IN ('running', 'complete', 'partial')),
        started_at timestamptz NOT NULL,
        finished_at timestamptz,
        attempts integer NOT NULL DEFAULT 1
    )""",
    "CREATE INDEX runs_by_connection ON {s}.runs (connection, status)",
    """CREATE TABLE {s}.run_models (
        run_id bigint NOT NULL,
        model text NOT NULL,
        status text NOT NULL CHECK (status IN ('complete', 'failed')),
        error text,
        finished_at timestamptz NOT NULL,
        PRIMARY KEY (run_id, model)
    )""",
    """CREATE TABLE {s}.locks (
        connection text PRIMARY KEY,
        owner text NOT NULL,
        host text NOT NULL,
        pid integer NOT NULL,
        acquired_at timestamptz NOT NULL,
        lease_until timestamptz NOT NULL
    )""",
    # Unlogged: no WAL for what a read saw; a server crash empties it, which loses nothing needed (a
    # model that did not complete is read again from its start).
    """CREATE UNLOGGED TABLE {s}.seen (
        connection text COLLATE "C" NOT NULL,
        model text COLLATE "C" NOT NULL,
        id text COLLATE "C" NOT NULL,
        PRIMARY KEY (connection, model, id)
    )""",
)
_V2: Final = ("ALTER TABLE {s}.run_models ADD COLUMN held integer NOT NULL DEFAULT 0",)
# Changes not yet given a cursor (see the module docstring). No index: the table holds only the changes
# written since the last `_sequence`, which reads all of it. Idempotent, as a store whose version was
# set back may have them.
_V3: Final = (
    # A change-log row without its cursor, numbered by (batch, n): the order its writer wrote it in.
    """CREATE TABLE IF NOT EXISTS {s}.pending_changes (
        batch bigint NOT NULL, n bigint NOT NULL, LIKE {s}.changes INCLUDING CONSTRAINTS
    )""",
    "ALTER TABLE {s}.pending_changes DROP COLUMN IF EXISTS cursor",
    "CREATE SEQUENCE IF NOT EXISTS {s}.change_batches",
    # Each statement of a plpgsql function takes a fresh snapshot (READ COMMITTED): the move sees every
    # move committed before this one took the lock.
    """CREATE OR REPLACE FUNCTION {s}.sequence_changes(lock_key bigint) RETURNS bigint
    LANGUAGE plpgsql AS $fn$
    DECLARE
        moved bigint;
    BEGIN
        IF NOT EXISTS (SELECT 1 FROM {s}.pending_changes) THEN
            RETURN 0;
        END IF;
        PERFORM pg_advisory_xact_lock(lock_key);
        WITH gone AS (DELETE FROM {s}.pending_changes RETURNING *)
        INSERT INTO {s}.changes (cursor, connection, model, record_id, remote_id, kind, at, run_id)
        SELECT (SELECT COALESCE(MAX(cursor), 0) FROM {s}.changes)
               + row_number() OVER (ORDER BY batch, n),
               connection, model, record_id, remote_id, kind, at, run_id
        FROM gone;
        GET DIAGNOSTICS moved = ROW_COUNT;
        RETURN moved;
    END
    $fn$""",
)
MIGRATIONS: Final = (_V1, _V2, _V3)
assert len(MIGRATIONS) == SCHEMA_VERSION


class PostgresStore(FeedReader):
    """The store for several workers on several machines: PostgreSQL, in its own schema (default
    ``lmsconnect``) so it can live in the service's database. Open it with `lmsconnect.open_store`
    (``postgresql://...`` or ``postgres://...``; ``?schema=name`` or ``schema=`` picks the schema).

    ``shared_budgets=True`` (or ``?budgets=shared`` in the URL) makes every `sync` into this store count
    the connector's calls in `PostgresBudgets` in the same schema, under the connection key, with every
    other process that does (unless the connector was given ``connect(budget=...)``): no process needs
    to pass ``budget=`` for its syncs to share the vendor's windows. `budgets` is then that instance
    (``budgets.tenant(key)`` for a connection opened only for actions).
    """

    def __init__(
        self,
        url: str,
        *,
        schema: str | None = None,
        shared_budgets: bool | None = None,
        min_connections: int = 1,
        max_connections: int = 8,
        connect_timeout_s: float = 30.0,
    ) -> None:
        if not is_postgres_url(url):
            raise InvalidInput("a PostgreSQL store URL starts with postgresql:// or postgres://", field="url")
        self._raw_url = url
        self._url, from_url, self.url = _split_url(url)
        if shared_budgets is None:
            option = url_option(url, "budgets")
            if option not in (None, "shared", "local"):
                raise InvalidInput(
                    f"budgets={option!r} in the store URL: use budgets=shared (count rate budgets in the "
                    "store, with every process) or budgets=local (each process counts its own)",
                    field="url",
                )
            shared_budgets = option == "shared"
        self._share = shared_budgets
        #: The shared rate budgets (open with the store) when ``shared_budgets``; else None.
        self.budgets: PostgresBudgets | None = None
        self.schema = schema or from_url or DEFAULT_SCHEMA
        if not _IDENTIFIER.fullmatch(self.schema):
            raise InvalidInput(
                f"schema {self.schema!r} is not a plain PostgreSQL identifier (letters, digits, _)",
                field="schema",
            )
        self._s = f'"{self.schema}"'
        self._min, self._max, self._timeout = min_connections, max_connections, connect_timeout_s
        self._pool: psycopg_pool.AsyncConnectionPool[Any] | None = None
        self._converter = store_converter()
        self._append_key = _lock_key("append", self.schema)
        self.schema_version = 0

    def __repr__(self) -> str:
        state = "open" if self._pool is not None else "closed"
        return f"<PostgresStore {self.url!r} schema={self.schema!r} {state}>"

    def shared_budget(self, connection: str) -> SharedBudget | None:
        return None if self.budgets is None else self.budgets.tenant(connection)

    def _q(self, sql: str) -> str:
        return sql.replace("{s}", self._s)

    # -- lifecycle ---------------------------------------------------------------------------------

    async def open(self) -> PostgresStore:
        if self._pool is not None:
            return self
        try:
            import psycopg
            import psycopg_pool
        except ImportError as exc:
            raise ConfigurationError(
                f"opening the PostgreSQL store {self.url!r} needs psycopg 3 ({exc})", hint=_EXTRA_HINT
            ) from None
        try:
            # One plain connection first: a wrong host, password or database fails here with the
            # server's own message, instead of as a pool timeout.
            async with await psycopg.AsyncConnection.connect(
                self._url, autocommit=True, prepare_threshold=None, connect_timeout=int(self._timeout)
            ) as conn:
                self.schema_version = await self._migrate(conn)
        except psycopg.Error as exc:
            raise StoreError(
                f"cannot open the PostgreSQL store {self.url!r} (schema {self.schema!r}): "
                f"{type(exc).__name__}: {str(exc).strip()}",
                hint="Check the URL, that the server runs, and the role's permissions (docs/sync.md)",
            ) from None

        async def configure(conn: psycopg.AsyncConnection[Any]) -> None:
            # The change-log append relies on each statement seeing what committed before it.
            await conn.set_isolation_level(psycopg.IsolationLevel.READ_COMMITTED)

        pool: psycopg_pool.AsyncConnectionPool[Any] = psycopg_pool.AsyncConnectionPool(
            self._url,
            min_size=self._min,
            max_size=self._max,
            # autocommit: transactions are explicit (conn.transaction()); prepare_threshold=None: no
            # server-side prepared statements, which PgBouncer in transaction mode cannot route.
            kwargs={"autocommit": True, "prepare_threshold": None},
            configure=configure,
            timeout=self._timeout,
            open=False,
            name=f"lmsconnect-{self.schema}",
        )
        try:
            await pool.open(wait=True, timeout=self._timeout)
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            await pool.close()
            raise StoreError(f"cannot open a connection pool to {self.url!r}: {exc}") from None
        self._pool = pool
        if self._share:
            from ._budget_postgres import PostgresBudgets

            budgets = PostgresBudgets(self._raw_url, schema=self.schema)
            try:
                await budgets.open()
            except BaseException:
                await self.aclose()
                raise
            self.budgets = budgets
        return self

    async def _migrate(self, conn: psycopg.AsyncConnection[Any]) -> int:
        async with conn.transaction(), conn.cursor() as cur:
            # Two processes opening a new store at once: one migrates, the other waits and finds it done.
            await cur.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_key("migrate", self.schema),))
            await cur.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (self.schema,))
            if await cur.fetchone() is None:
                # Only when missing: CREATE SCHEMA IF NOT EXISTS needs CREATE on the database even when
                # the schema exists, and a DBA may have created it for a role that lacks that.
                await cur.execute(self._q("CREATE SCHEMA {s}"))
            await cur.execute(
                self._q("CREATE TABLE IF NOT EXISTS {s}.schema_version (version integer NOT NULL)")
            )
            await cur.execute(self._q("SELECT version FROM {s}.schema_version"))
            row = await cur.fetchone()
            version = int(row[0]) if row else 0
            if row is None:
                await cur.execute(self._q("INSERT INTO {s}.schema_version (version) VALUES (0)"))
            check_schema_version(version, f"{self.url!r} (schema {self.schema!r})")
            for step in MIGRATIONS[version:]:
                for statement in step:
                    await cur.execute(self._q(statement))
            await cur.execute(self._q("UPDATE {s}.schema_version SET version = %s"), (SCHEMA_VERSION,))
        return SCHEMA_VERSION

    async def aclose(self) -> None:
        if self.budgets is not None:
            budgets, self.budgets = self.budgets, None
            await budgets.aclose()
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    async def __aenter__(self) -> PostgresStore:
        return await self.open()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def _run(self, func: Callable[[Cursor], Awaitable[T]], *, transaction: bool = True) -> T:
        """`func` in one transaction on a pooled connection (or, ``transaction=False``, each of its
        statements committed on its own); psycopg's errors become StoreError."""
        import psycopg

        pool = self._pool
        if pool is None:
            raise StoreError("the store is closed; use `async with lmsconnect.open_store(url) as store:`")
        try:
            # No pipeline mode: it would save round trips, but a sync cancelled mid-batch leaves
            # psycopg's pipeline to be finalised by the garbage collector, which then raises.
            async with pool.connection() as conn:
                if not transaction:
                    async with conn.cursor() as cur:
                        return await func(cur)
                async with conn.transaction(), conn.cursor() as cur:
                    return await func(cur)
        except psycopg.Error as exc:
            raise StoreError(
                f"the PostgreSQL store {self.url!r} failed: {type(exc).__name__}: {str(exc).strip()}"
            ) from None

    def _connection_key(self, connection: str) -> int:
        return _lock_key(f"sync:{connection}", self.schema)

    async def _fence(self, cur: Cursor, connection: str, owner: str) -> None:
        # Shared: the sync's own concurrent writes do not wait for each other; a takeover (exclusive)
        # waits until this transaction has committed. Two statements: the SELECT's snapshot must be
        # taken after the lock is granted, to see a takeover that committed while we waited.
        await cur.execute("SELECT pg_advisory_xact_lock_shared(%s)", (self._connection_key(connection),))
        await cur.execute(self._q("SELECT owner FROM {s}.locks WHERE connection = %s"), (connection,))
        row = await cur.fetchone()
        if row is None or row[0] != owner:
            raise lock_lost(connection)

    async def _sequence(self) -> None:
        """Give every committed pending change its cursor (see the module docstring). One statement in
        autocommit: the server commits it, and releases the lock, without a round trip to us."""

        async def op(cur: Cursor) -> None:
            await cur.execute(self._q("SELECT {s}.sequence_changes(%s)"), (self._append_key,))

        await self._run(op, transaction=False)

    # -- lock ------------------------------------------------------------------------------------

    async def acquire_lock(self, connection: str, owner: str, *, lease_s: float) -> LockHolder | None:
        async def op(cur: Cursor) -> LockHolder | None:
            # Exclusive: wait for the writes of the holder that passed their fence (see `_fence`).
            await cur.execute("SELECT pg_advisory_xact_lock(%s)", (self._connection_key(connection),))
            # The database's clock decides both the lease and its expiry: hosts may disagree on the time.
            await cur.execute(
                self._q(
                    "INSERT INTO {s}.locks AS l (connection, owner, host, pid, acquired_at, lease_until)"
                    " VALUES (%s, %s, %s, %s, clock_timestamp(),"
                    " clock_timestamp() + make_interval(secs => %s))"
                    " ON CONFLICT (connection) DO UPDATE SET owner = excluded.owner, host = excluded.host,"
                    " pid = excluded.pid, acquired_at = excluded.acquired_at,"
                    " lease_until = excluded.lease_until"
                    " WHERE l.owner = excluded.owner OR l.lease_until < clock_timestamp()"
                    " RETURNING owner"
                ),
                (connection, owner, _HOST, os.getpid(), float(lease_s)),
            )
            if await cur.fetchone() is not None:
                return None
            await cur.execute(
                self._q(
                    "SELECT owner, host, pid, acquired_at, lease_until FROM {s}.locks WHERE connection = %s"
                ),
                (connection,),
            )
            row = await cur.fetchone()
            return LockHolder(
                connection=connection,
                owner=row[0],
                host=row[1],
                pid=row[2],
                acquired_at=row[3].astimezone(dt.timezone.utc),
                lease_until=row[4].astimezone(dt.timezone.utc),
            )

        return await self._run(op)

    async def renew_lock(self, connection: str, owner: str, *, lease_s: float) -> bool:
        async def op(cur: Cursor) -> bool:
            await cur.execute(
                self._q(
                    "UPDATE {s}.locks SET lease_until = clock_timestamp() + make_interval(secs => %s)"
                    " WHERE connection = %s AND owner = %s"
                ),
                (float(lease_s), connection, owner),
            )
            return bool(cur.rowcount == 1)

        return await self._run(op)

    async def release_lock(self, connection: str, owner: str) -> None:
        async def op(cur: Cursor) -> None:
            await cur.execute(
                self._q("DELETE FROM {s}.locks WHERE connection = %s AND owner = %s"), (connection, owner)
            )

        await self._run(op)

    # -- runs ------------------------------------------------------------------------------------

    async def begin_run(self, connection: str, *, slug: str, owner: str) -> RunInfo:
        async def op(cur: Cursor) -> RunInfo:
            await self._fence(cur, connection, owner)
            await cur.execute(
                self._q(
                    "SELECT run_id FROM {s}.runs WHERE connection = %s AND status = 'running'"
                    " ORDER BY run_id DESC LIMIT 1"
                ),
                (connection,),
            )
            row = await cur.fetchone()
            if row is not None:
                run_id = int(row[0])
                await cur.execute(
                    self._q("UPDATE {s}.runs SET attempts = attempts + 1 WHERE run_id = %s"), (run_id,)
                )
                await cur.execute(
                    self._q("SELECT model FROM {s}.run_models WHERE run_id = %s AND status = 'complete'"),
                    (run_id,),
                )
                done = await cur.fetchall()
                return RunInfo(
                    run_id=run_id,
                    connection=connection,
                    resumed=True,
                    complete_models=frozenset(r[0] for r in done),
                )
            await cur.execute(
                self._q(
                    "INSERT INTO {s}.runs (connection, slug, status, started_at)"
                    " VALUES (%s, %s, 'running', now()) RETURNING run_id"
                ),
                (connection, slug),
            )
            new = await cur.fetchone()
            return RunInfo(run_id=int(new[0]), connection=connection, resumed=False)

        return await self._run(op)

    async def finish_run(self, run: RunInfo, *, status: str, owner: str) -> None:
        async def op(cur: Cursor) -> None:
            await self._fence(cur, run.connection, owner)
            await cur.execute(
                self._q("UPDATE {s}.runs SET status = %s, finished_at = now() WHERE run_id = %s"),
                (status, run.run_id),
            )

        await self._run(op)
        await self._sequence()  # changes of a batch cancelled between its commit and its move

    async def run_counts(self, run_id: int) -> dict[str, dict[str, int]]:
        async def op(cur: Cursor) -> dict[str, dict[str, int]]:
            out: dict[str, dict[str, int]] = {}
            # A change may still be pending (a run whose changes have no cursor yet): count both tables.
            await cur.execute(
                self._q(
                    "SELECT model, kind, COUNT(*) FROM (SELECT model, kind FROM {s}.changes WHERE run_id = %s"
                    " UNION ALL SELECT model, kind FROM {s}.pending_changes WHERE run_id = %s) AS c"
                    " GROUP BY model, kind"
                ),
                (run_id, run_id),
            )
            for model, kind, count in await cur.fetchall():
                out.setdefault(model, {})[kind] = int(count)
            await cur.execute(
                self._q("SELECT model, held FROM {s}.run_models WHERE run_id = %s AND held > 0"), (run_id,)
            )
            for model, held in await cur.fetchall():
                out.setdefault(model, {})["held"] = int(held)
            return out

        return await self._run(op)

    # -- the two writes of a sync ----------------------------------------------------------------

    async def begin_model(self, run: RunInfo, model: ModelName, *, owner: str) -> None:
        async def op(cur: Cursor) -> None:
            await self._fence(cur, run.connection, owner)
            await cur.execute(
                self._q("DELETE FROM {s}.seen WHERE connection = %s AND model = %s"), (run.connection, model)
            )

        await self._run(op)

    async def apply_batch(
        self, run: RunInfo, model: ModelName, records: Sequence[Record], *, owner: str
    ) -> BatchResult:
        started = time.perf_counter()
        # Serialising in a worker thread keeps the event loop free for the concurrent reads.
        rows = await anyio.to_thread.run_sync(
            lambda: [(r.id, r.remote_id, *serialise(self._converter, r)) for r in records]
        )
        conn, s = run.connection, self._q

        async def op(cur: Cursor) -> BatchResult:
            await self._fence(cur, conn, owner)
            await cur.execute(
                s(
                    "SELECT id, fingerprint, data_hash, remote_deleted_at IS NOT NULL FROM {s}.records"
                    " WHERE connection = %s AND model = %s AND id = ANY(%s)"
                ),
                (conn, model, list({r[0] for r in rows})),
            )
            known = {rid: (fp, dh, bool(gone)) for rid, fp, dh, gone in await cur.fetchall()}
            plan = plan_batch(rows, known)
            if plan.inserts:
                await cur.execute(
                    s(
                        "INSERT INTO {s}.records (connection, model, id, remote_id, fingerprint, data,"
                        " data_hash, changed_at, first_seen_at) SELECT %s, %s, i, r, f, d, h, now(), now()"
                        " FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[])"
                        " AS t(i, r, f, d, h)"
                    ),
                    (conn, model, *_columns(plan.inserts, 5)),
                )
            # One UPDATE per batch: a record repeated within the batch is written as its last self.
            updates = list({r[0]: r for r in plan.updates}.values())
            if updates:
                await cur.execute(
                    s(
                        "UPDATE {s}.records AS x SET remote_id = t.r, fingerprint = t.f, data = t.d,"
                        " data_hash = t.h, changed_at = now(), remote_deleted_at = NULL"
                        " FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[])"
                        " AS t(i, r, f, d, h) WHERE x.connection = %s AND x.model = %s AND x.id = t.i"
                    ),
                    (*_columns(updates, 5), conn, model),
                )
            data_only = list({r[0]: r for r in plan.data_only}.values())
            if data_only:
                await cur.execute(
                    s(
                        "UPDATE {s}.records AS x SET data = t.d, data_hash = t.h"
                        " FROM unnest(%s::text[], %s::text[], %s::text[]) AS t(i, d, h)"
                        " WHERE x.connection = %s AND x.model = %s AND x.id = t.i"
                    ),
                    (*_columns(data_only, 3), conn, model),
                )
            await cur.execute(
                s(
                    "INSERT INTO {s}.seen (connection, model, id) SELECT %s, %s, unnest(%s::text[])"
                    " ON CONFLICT DO NOTHING"
                ),
                (conn, model, plan.ids),
            )
            if plan.changes:
                await cur.execute(
                    s(
                        "INSERT INTO {s}.pending_changes (batch, n, connection, model, record_id, remote_id,"
                        " kind, at, run_id) SELECT (SELECT nextval('{s}.change_batches')), t.n,"
                        " %s, %s, t.i, t.r, t.k, now(), %s"
                        " FROM unnest(%s::text[], %s::text[], %s::text[]) WITH ORDINALITY AS t(i, r, k, n)"
                    ),
                    (conn, model, run.run_id, *_columns(plan.changes, 3)),
                )
            return plan.result()

        result = await self._run(op)
        if result.created or result.updated:
            await self._sequence()  # as on SQLite, the batch's changes have cursors when it returns
        return BatchResult(
            created=result.created,
            updated=result.updated,
            unchanged=result.unchanged,
            writes=result.writes,
            seconds=time.perf_counter() - started,
        )

    async def finish_model(
        self,
        run: RunInfo,
        model: ModelName,
        *,
        complete: bool,
        error: str | None,
        owner: str,
        guard: DeletionGuard | None = None,
    ) -> ModelFinish:
        conn, s = run.connection, self._q
        unseen_sql = (
            "connection = %s AND model = %s AND remote_deleted_at IS NULL AND NOT EXISTS"
            " (SELECT 1 FROM {s}.seen AS v WHERE v.connection = r.connection AND v.model = r.model"
            " AND v.id = r.id)"
        )

        async def op(cur: Cursor) -> ModelFinish:
            await self._fence(cur, conn, owner)
            outcome = ModelFinish()
            if complete:
                # `seen` is filled and emptied within minutes, so its statistics are often those of an
                # empty table, and the planner then checks each stored record against all of `seen` in a
                # nested loop (minutes for 20,000 records). A hash or merge anti-join is right at any size.
                await cur.execute("SET LOCAL enable_nestloop = off")
                await cur.execute(
                    s(
                        "SELECT COUNT(*), COUNT(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM {s}.seen AS v"
                        " WHERE v.connection = r.connection AND v.model = r.model AND v.id = r.id))"
                        " FROM {s}.records AS r"
                        " WHERE connection = %s AND model = %s AND remote_deleted_at IS NULL"
                    ),
                    (conn, model),
                )
                stored, unseen = await cur.fetchone()
                kept = deletions_kept(guard, unseen, stored)
                if kept is not None:
                    outcome = kept
                else:
                    # Same transaction as the run_models row: a crash leaves either all of a model's
                    # deletions recorded and the model marked complete, or neither.
                    await cur.execute(
                        s(
                            "WITH gone AS (UPDATE {s}.records AS r SET remote_deleted_at = now(),"
                            f" changed_at = now() WHERE {unseen_sql} RETURNING id, remote_id)"
                            " INSERT INTO {s}.pending_changes (batch, n, connection, model, record_id,"
                            " remote_id, kind, at, run_id) SELECT (SELECT nextval('{s}.change_batches')),"
                            " row_number() OVER (ORDER BY id), %s, %s, id, remote_id, 'deleted', now(), %s"
                            " FROM gone"
                        ),
                        (conn, model, conn, model, run.run_id),
                    )
                    outcome = ModelFinish(deleted=cur.rowcount, stored=stored)
            await cur.execute(
                s(
                    "INSERT INTO {s}.run_models (run_id, model, status, error, finished_at, held)"
                    " VALUES (%s, %s, %s, %s, now(), %s) ON CONFLICT (run_id, model) DO UPDATE SET"
                    " status = excluded.status, error = excluded.error,"
                    " finished_at = excluded.finished_at, held = excluded.held"
                ),
                (run.run_id, model, "complete" if complete else "failed", error, outcome.held),
            )
            await cur.execute(
                s("DELETE FROM {s}.seen WHERE connection = %s AND model = %s"), (conn, model)
            )
            return outcome

        outcome = await self._run(op)
        if outcome.deleted:
            await self._sequence()
        return outcome

    # -- reading back (the paging and decoding are FeedReader's) ------------------------------------

    async def _records_page(
        self, model: ModelName, connection: str | None, include_deleted: bool, after: tuple[str, str]
    ) -> Sequence[Sequence[Any]]:
        sql = (
            "SELECT connection, id, data, changed_at, remote_deleted_at FROM {s}.records"
            " WHERE model = %s AND (connection, id) > (%s, %s)"
        )
        args: list[Any] = [model, *after]
        if connection is not None:
            sql += " AND connection = %s"
            args.append(connection)
        if not include_deleted:
            sql += " AND remote_deleted_at IS NULL"
        return await self._fetch(sql + f" ORDER BY connection, id LIMIT {PAGE}", args)

    async def _record_row(self, model: ModelName, id: str, connection: str | None) -> Sequence[Any] | None:
        sql = (
            "SELECT connection, id, data, changed_at, remote_deleted_at FROM {s}.records"
            " WHERE model = %s AND id = %s"
        )
        args: list[Any] = [model, id]
        if connection is not None:
            sql += " AND connection = %s"
            args.append(connection)
        rows = await self._fetch(sql + " ORDER BY connection LIMIT 1", args)
        return rows[0] if rows else None

    async def _changes_page(self, after: int, connection: str | None, size: int) -> Sequence[Sequence[Any]]:
        sql = (
            "SELECT cursor, kind, model, record_id, remote_id, connection, at, run_id FROM {s}.changes"
            " WHERE cursor > %s"
        )
        args: list[Any] = [after]
        if connection is not None:
            sql += " AND connection = %s"
            args.append(connection)
        await self._sequence()  # every change committed before this read has its cursor
        return await self._fetch(sql + " ORDER BY cursor LIMIT %s", [*args, size])

    async def _fetch(self, sql: str, args: Sequence[Any]) -> builtins.list[tuple[Any, ...]]:
        async def op(cur: Cursor) -> builtins.list[tuple[Any, ...]]:
            await cur.execute(self._q(sql), args)
            rows: builtins.list[tuple[Any, ...]] = await cur.fetchall()
            return rows

        return await self._run(op)

    async def last_cursor(self, *, connection: str | None = None) -> int:
        """The newest cursor in the log (0 when empty): where a new consumer that wants only future
        changes starts."""
        await self._sequence()
        if connection is None:
            rows = await self._fetch("SELECT MAX(cursor) FROM {s}.changes", ())
        else:
            rows = await self._fetch(
                "SELECT MAX(cursor) FROM {s}.changes WHERE connection = %s", (connection,)
            )
        return int(rows[0][0] or 0)

    async def connections(self) -> builtins.list[str]:
        """The connection keys this store has synced."""
        rows = await self._fetch("SELECT DISTINCT connection FROM {s}.runs ORDER BY connection", ())
        return [r[0] for r in rows]

    async def runs(self, *, connection: str | None = None) -> builtins.list[dict[str, Any]]:
        """The sync runs recorded, oldest first (run_id, connection, status, attempts, times)."""
        sql = "SELECT run_id, connection, slug, status, started_at, finished_at, attempts FROM {s}.runs"
        args: tuple[Any, ...] = ()
        if connection is not None:
            sql += " WHERE connection = %s"
            args = (connection,)
        out = []
        for row in await self._fetch(sql + " ORDER BY run_id", args):
            item = dict(zip(RUN_FIELDS, row, strict=True))
            for key in ("started_at", "finished_at"):
                item[key] = None if item[key] is None else iso(item[key])
            out.append(item)
        return out


def _columns(rows: Sequence[Sequence[str]], width: int) -> builtins.list[builtins.list[str]]:
    """Rows as `width` column lists, for ``unnest(%s::text[], ...)``: one statement per batch."""
    return [[row[i] for row in rows] for i in range(width)] if rows else [[] for _ in range(width)]
