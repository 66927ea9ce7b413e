"""The embedded state store: SQLite's SQL, transactions and locking for the change feed of `_changefeed`.

One file (or ``":memory:"``), stdlib ``sqlite3`` in WAL mode; blocking calls run in a worker thread, one at
a time, so the event loop keeps reading while the store writes. Open it with `lmsconnect.open_store`.
"""

from __future__ import annotations

import builtins
import datetime as dt
import os
import socket
import sqlite3
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Final, TypeVar

import anyio
import anyio.to_thread
import attrs

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
    now,
    plan_batch,
    serialise,
    store_converter,
)
from ._models import ModelName, Record

__all__ = ["SQLiteStore"]

T = TypeVar("T")
M = TypeVar("M", bound=Record)


# -- migrations ------------------------------------------------------------------------------------


def _v1(db: sqlite3.Connection) -> None:
    db.execute(
        """CREATE TABLE records (
            connection TEXT NOT NULL,
            model TEXT NOT NULL,
            id TEXT NOT NULL,
            remote_id TEXT NOT NULL,
            fingerprint TEXT NOT NULL,
            data_hash TEXT NOT NULL,
            changed_at TEXT NOT NULL,
            remote_deleted_at TEXT,
            first_seen_at TEXT NOT NULL,
            data TEXT NOT NULL,
            PRIMARY KEY (connection, model, id)
        )"""
    )
    db.execute(
        """CREATE TABLE changes (
            cursor INTEGER PRIMARY KEY AUTOINCREMENT,
            connection TEXT NOT NULL,
            model TEXT NOT NULL,
            record_id TEXT NOT NULL,
            remote_id TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('created', 'updated', 'deleted')),
            at TEXT NOT NULL,
            run_id INTEGER NOT NULL
        )"""
    )
    db.execute("CREATE INDEX changes_by_connection ON changes (connection, cursor)")
    db.execute("CREATE INDEX changes_by_run ON changes (run_id, model, kind)")
    db.execute(
        """CREATE TABLE runs (
            run_id INTEGER PRIMARY KEY AUTOINCREMENT,
            connection TEXT NOT NULL,
            slug TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('running', 'complete', 'partial')),
            started_at TEXT NOT NULL,
            finished_at TEXT,
            attempts INTEGER NOT NULL DEFAULT 1
        )"""
    )
    db.execute("CREATE INDEX runs_by_connection ON runs (connection, status)")
    db.execute(
        """CREATE TABLE run_models (
            run_id INTEGER NOT NULL,
            model TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('complete', 'failed')),
            error TEXT,
            finished_at TEXT NOT NULL,
            PRIMARY KEY (run_id, model)
        )"""
    )
    db.execute(
        """CREATE TABLE locks (
            connection TEXT PRIMARY KEY,
            owner TEXT NOT NULL,
            host TEXT NOT NULL,
            pid INTEGER NOT NULL,
            acquired_at TEXT NOT NULL,
            lease_until REAL NOT NULL
        )"""
    )


# Ordered: migration i brings the schema from version i to i + 1. Append; never edit a released one.
def _v2(db: sqlite3.Connection) -> None:
    db.execute("ALTER TABLE run_models ADD COLUMN held INTEGER NOT NULL DEFAULT 0")


MIGRATIONS: Final[tuple[Callable[[sqlite3.Connection], None], ...]] = (_v1, _v2)
assert len(MIGRATIONS) == SCHEMA_VERSION


def _migrate(db: sqlite3.Connection, name: str) -> int:
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = db.execute("SELECT version FROM schema_version").fetchone()
        version = row[0] if row else 0
        if row is None:
            db.execute("INSERT INTO schema_version (version) VALUES (0)")
        check_schema_version(version, name)
        for step in MIGRATIONS[version:]:
            step(db)
        db.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return SCHEMA_VERSION


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return True
    return True


_HOST: Final = socket.gethostname()


class SQLiteStore(FeedReader):
    """The embedded store: one SQLite file (or ``":memory:"``), WAL mode, one connection used from one
    worker thread at a time. Open it with `open_store`."""

    def __init__(self, path: str | os.PathLike[str] = ":memory:", *, busy_timeout_s: float = 30.0) -> None:
        self.path = os.fspath(path)
        self._busy_timeout_s = busy_timeout_s
        self._db: sqlite3.Connection | None = None
        self._limiter = anyio.CapacityLimiter(1)
        self._converter = store_converter()
        self.schema_version = 0

    def __repr__(self) -> str:
        return f"<SQLiteStore {self.path!r} {'open' if self._db is not None else 'closed'}>"

    # -- lifecycle ---------------------------------------------------------------------------------

    async def open(self) -> SQLiteStore:
        if self._db is None:
            try:
                self._db = await anyio.to_thread.run_sync(self._connect, limiter=self._limiter)
            except sqlite3.Error as exc:
                raise StoreError(
                    f"cannot open the store {self.path!r}: {type(exc).__name__}: {exc}",
                    hint="Check the path exists and is writable, and that it is an lmsconnect store",
                ) from exc
        return self

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE takes the write lock up
        # front, so two writers wait on busy_timeout instead of deadlocking on a lock upgrade).
        db = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=self._busy_timeout_s
        )
        try:
            if self.path != ":memory:":
                self._set_wal(db)
            # NORMAL in WAL mode loses nothing on a process crash (kill -9); only a power cut may
            # drop the last commits, and the database stays consistent either way.
            db.execute("PRAGMA synchronous=NORMAL")
            self.schema_version = _migrate(db, repr(self.path))
            db.execute(
                "CREATE TEMP TABLE seen (connection TEXT NOT NULL, model TEXT NOT NULL, id TEXT NOT NULL,"
                " PRIMARY KEY (connection, model, id)) WITHOUT ROWID"
            )
        except BaseException:
            db.close()
            raise
        return db

    def _set_wal(self, db: sqlite3.Connection) -> None:
        # Switching to (or confirming) WAL can answer SQLITE_BUSY at once, without waiting on the busy
        # timeout, while another process writes or checkpoints (seen with several writers and a consumer
        # opening together): retry it until the busy timeout is spent, then let the error through.
        deadline = time.monotonic() + self._busy_timeout_s
        pause = 0.005
        while True:
            try:
                db.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if ("locked" not in str(exc) and "busy" not in str(exc)) or time.monotonic() > deadline:
                    raise
                time.sleep(pause)
                pause = min(pause * 2, 0.2)

    async def aclose(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            await anyio.to_thread.run_sync(db.close, limiter=self._limiter)

    async def __aenter__(self) -> SQLiteStore:
        return await self.open()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def _run(self, func: Callable[[sqlite3.Connection], T]) -> T:
        db = self._db
        if db is None:
            raise StoreError("the store is closed; use `async with lmsconnect.open_store(path) as store:`")
        try:
            return await anyio.to_thread.run_sync(func, db, limiter=self._limiter)
        except sqlite3.Error as exc:
            raise StoreError(f"the store {self.path!r} failed: {type(exc).__name__}: {exc}") from exc

    @staticmethod
    def _write(db: sqlite3.Connection, func: Callable[[], T]) -> T:
        db.execute("BEGIN IMMEDIATE")
        try:
            result = func()
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return result

    # -- lock ------------------------------------------------------------------------------------

    async def acquire_lock(self, connection: str, owner: str, *, lease_s: float) -> LockHolder | None:
        def op(db: sqlite3.Connection) -> LockHolder | None:
            def body() -> LockHolder | None:
                row = db.execute(
                    "SELECT owner, host, pid, acquired_at, lease_until FROM locks WHERE connection = ?",
                    (connection,),
                ).fetchone()
                stamp = time.time()
                if row is not None and row[0] != owner:
                    # Time of this host: SQLite is one machine's file, so every writer shares the clock.
                    expired = row[4] < stamp
                    # The holder crashed on this machine: no need to wait for its lease to run out.
                    dead = row[1] == _HOST and not _pid_alive(row[2])
                    if not (expired or dead):
                        return LockHolder(
                            connection=connection,
                            owner=row[0],
                            host=row[1],
                            pid=row[2],
                            acquired_at=dt.datetime.fromisoformat(row[3]),
                            lease_until=dt.datetime.fromtimestamp(row[4], dt.timezone.utc),
                        )
                db.execute(
                    "INSERT OR REPLACE INTO locks (connection, owner, host, pid, acquired_at, lease_until)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (connection, owner, _HOST, os.getpid(), now().isoformat(), stamp + lease_s),
                )
                return None

            return self._write(db, body)

        return await self._run(op)

    async def renew_lock(self, connection: str, owner: str, *, lease_s: float) -> bool:
        def op(db: sqlite3.Connection) -> bool:
            def body() -> bool:
                cur = db.execute(
                    "UPDATE locks SET lease_until = ? WHERE connection = ? AND owner = ?",
                    (time.time() + lease_s, connection, owner),
                )
                return cur.rowcount == 1

            return self._write(db, body)

        return await self._run(op)

    async def release_lock(self, connection: str, owner: str) -> None:
        def op(db: sqlite3.Connection) -> None:
            self._write(
                db,
                lambda: db.execute(
                    "DELETE FROM locks WHERE connection = ? AND owner = ?", (connection, owner)
                ),
            )

        await self._run(op)

    @staticmethod
    def _fence(db: sqlite3.Connection, connection: str, owner: str) -> None:
        row = db.execute("SELECT owner FROM locks WHERE connection = ?", (connection,)).fetchone()
        if row is None or row[0] != owner:
            raise lock_lost(connection)

    # -- runs ------------------------------------------------------------------------------------

    async def begin_run(self, connection: str, *, slug: str, owner: str) -> RunInfo:
        def op(db: sqlite3.Connection) -> RunInfo:
            def body() -> RunInfo:
                self._fence(db, connection, owner)
                row = db.execute(
                    "SELECT run_id FROM runs WHERE connection = ? AND status = 'running'"
                    " ORDER BY run_id DESC LIMIT 1",
                    (connection,),
                ).fetchone()
                if row is not None:
                    run_id = int(row[0])
                    db.execute("UPDATE runs SET attempts = attempts + 1 WHERE run_id = ?", (run_id,))
                    done = db.execute(
                        "SELECT model FROM run_models WHERE run_id = ? AND status = 'complete'",
                        (run_id,),
                    ).fetchall()
                    return RunInfo(
                        run_id=run_id,
                        connection=connection,
                        resumed=True,
                        complete_models=frozenset(r[0] for r in done),
                    )
                cur = db.execute(
                    "INSERT INTO runs (connection, slug, status, started_at) VALUES (?, ?, 'running', ?)",
                    (connection, slug, iso(now())),
                )
                assert cur.lastrowid is not None
                return RunInfo(run_id=cur.lastrowid, connection=connection, resumed=False)

            return self._write(db, body)

        return await self._run(op)

    async def finish_run(self, run: RunInfo, *, status: str, owner: str) -> None:
        def op(db: sqlite3.Connection) -> None:
            def body() -> None:
                self._fence(db, run.connection, owner)
                db.execute(
                    "UPDATE runs SET status = ?, finished_at = ? WHERE run_id = ?",
                    (status, iso(now()), run.run_id),
                )

            self._write(db, body)

        await self._run(op)

    async def run_counts(self, run_id: int) -> dict[str, dict[str, int]]:
        def op(db: sqlite3.Connection) -> dict[str, dict[str, int]]:
            out: dict[str, dict[str, int]] = {}
            for model, kind, count in db.execute(
                "SELECT model, kind, COUNT(*) FROM changes WHERE run_id = ? GROUP BY model, kind",
                (run_id,),
            ):
                out.setdefault(model, {})[kind] = count
            for model, held in db.execute(
                "SELECT model, held FROM run_models WHERE run_id = ? AND held > 0", (run_id,)
            ):
                out.setdefault(model, {})["held"] = held
            return out

        return await self._run(op)

    # -- the two writes of a sync ----------------------------------------------------------------

    async def apply_batch(
        self, run: RunInfo, model: ModelName, records: Sequence[Record], *, owner: str
    ) -> BatchResult:
        # Serialising in the worker thread keeps the event loop free for the concurrent reads.
        def op(db: sqlite3.Connection) -> BatchResult:
            started = time.perf_counter()
            rows = [(r.id, r.remote_id, *serialise(self._converter, r)) for r in records]
            result = self._write(db, lambda: self._apply(db, run, model, rows, owner))
            return attrs.evolve(result, seconds=time.perf_counter() - started)

        return await self._run(op)

    def _apply(
        self,
        db: sqlite3.Connection,
        run: RunInfo,
        model: ModelName,
        rows: Sequence[tuple[str, str, str, str, str]],
        owner: str,
    ) -> BatchResult:
        self._fence(db, run.connection, owner)
        at = iso(now())
        known: dict[str, tuple[str, str, bool]] = {}
        ids = list(dict.fromkeys(r[0] for r in rows))
        for start in range(0, len(ids), PAGE):
            chunk = ids[start : start + PAGE]
            marks = ",".join("?" * len(chunk))
            for rid, fp, dh, deleted in db.execute(
                f"SELECT id, fingerprint, data_hash, remote_deleted_at FROM records"
                f" WHERE connection = ? AND model = ? AND id IN ({marks})",
                (run.connection, model, *chunk),
            ):
                known[rid] = (fp, dh, deleted is not None)
        plan = plan_batch(rows, known)
        conn = run.connection
        db.executemany(
            "INSERT INTO records (connection, model, id, remote_id, fingerprint, data, data_hash,"
            " changed_at, first_seen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(conn, model, rid, remote, fp, data, dh, at, at) for rid, remote, fp, data, dh in plan.inserts],
        )
        db.executemany(
            "UPDATE records SET remote_id = ?, fingerprint = ?, data = ?, data_hash = ?, changed_at = ?,"
            " remote_deleted_at = NULL WHERE connection = ? AND model = ? AND id = ?",
            [(remote, fp, data, dh, at, conn, model, rid) for rid, remote, fp, data, dh in plan.updates],
        )
        db.executemany(
            "UPDATE records SET data = ?, data_hash = ? WHERE connection = ? AND model = ? AND id = ?",
            [(data, dh, conn, model, rid) for rid, data, dh in plan.data_only],
        )
        db.executemany(
            "INSERT INTO changes (connection, model, record_id, remote_id, kind, at, run_id)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(conn, model, rid, remote, kind, at, run.run_id) for rid, remote, kind in plan.changes],
        )
        # What this read of the model saw, for its deletions at the end. A temporary table: it costs no
        # write to the database file, and a crash loses nothing needed, because a model that did not
        # complete is read again from its start.
        db.executemany(
            "INSERT OR IGNORE INTO temp.seen (connection, model, id) VALUES (?, ?, ?)",
            [(conn, model, rid) for rid in plan.ids],
        )
        return plan.result()

    async def begin_model(self, run: RunInfo, model: ModelName, *, owner: str) -> None:
        def op(db: sqlite3.Connection) -> None:
            def body() -> None:
                self._fence(db, run.connection, owner)
                db.execute(
                    "DELETE FROM temp.seen WHERE connection = ? AND model = ?", (run.connection, model)
                )

            self._write(db, body)

        await self._run(op)

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
        def op(db: sqlite3.Connection) -> ModelFinish:
            def body() -> ModelFinish:
                self._fence(db, run.connection, owner)
                at = iso(now())
                outcome = ModelFinish()
                if complete:
                    where = (
                        "connection = ? AND model = ? AND remote_deleted_at IS NULL AND NOT EXISTS"
                        " (SELECT 1 FROM temp.seen AS s WHERE s.connection = records.connection"
                        " AND s.model = records.model AND s.id = records.id)"
                    )
                    args = (run.connection, model)
                    stored, unseen = db.execute(
                        "SELECT COUNT(*), COUNT(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM temp.seen AS s"
                        " WHERE s.connection = records.connection AND s.model = records.model"
                        " AND s.id = records.id)) FROM records"
                        " WHERE connection = ? AND model = ? AND remote_deleted_at IS NULL",
                        args,
                    ).fetchone()
                    kept = deletions_kept(guard, unseen, stored)
                    if kept is not None:
                        outcome = kept
                    else:
                        # Same transaction as the run_models row: a crash leaves either all of a model's
                        # deletions recorded and the model marked complete, or neither.
                        deleted = db.execute(
                            "INSERT INTO changes (connection, model, record_id, remote_id, kind, at, run_id)"
                            f" SELECT connection, model, id, remote_id, 'deleted', ?, ? FROM records"
                            f" WHERE {where} ORDER BY id",
                            (at, run.run_id, *args),
                        ).rowcount
                        db.execute(
                            f"UPDATE records SET remote_deleted_at = ?, changed_at = ? WHERE {where}",
                            (at, at, *args),
                        )
                        outcome = ModelFinish(deleted=deleted, stored=stored)
                db.execute(
                    "INSERT OR REPLACE INTO run_models (run_id, model, status, error, finished_at, held)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (run.run_id, model, "complete" if complete else "failed", error, at, outcome.held),
                )
                db.execute(
                    "DELETE FROM temp.seen WHERE connection = ? AND model = ?", (run.connection, model)
                )
                return outcome

            return self._write(db, body)

        return await self._run(op)

    # -- reading back (the paging and decoding are FeedReader's) ------------------------------------

    async def _records_page(
        self, model: ModelName, connection: str | None, include_deleted: bool, after: tuple[str, str]
    ) -> Sequence[Sequence[Any]]:
        def op(db: sqlite3.Connection) -> list[tuple[Any, ...]]:
            sql = (
                "SELECT connection, id, data, changed_at, remote_deleted_at FROM records"
                " WHERE model = ? AND (connection, id) > (?, ?)"
            )
            args: list[Any] = [model, *after]
            if connection is not None:
                sql += " AND connection = ?"
                args.append(connection)
            if not include_deleted:
                sql += " AND remote_deleted_at IS NULL"
            return db.execute(sql + f" ORDER BY connection, id LIMIT {PAGE}", args).fetchall()

        return await self._run(op)

    async def _record_row(self, model: ModelName, id: str, connection: str | None) -> Sequence[Any] | None:
        def op(db: sqlite3.Connection) -> tuple[Any, ...] | None:
            sql = (
                "SELECT connection, id, data, changed_at, remote_deleted_at FROM records"
                " WHERE model = ? AND id = ?"
            )
            args: list[Any] = [model, id]
            if connection is not None:
                sql += " AND connection = ?"
                args.append(connection)
            row: tuple[Any, ...] | None = db.execute(sql + " LIMIT 1", args).fetchone()
            return row

        return await self._run(op)

    async def _changes_page(self, after: int, connection: str | None, size: int) -> Sequence[Sequence[Any]]:
        def op(db: sqlite3.Connection) -> list[tuple[Any, ...]]:
            sql = (
                "SELECT cursor, kind, model, record_id, remote_id, connection, at, run_id FROM changes"
                " WHERE cursor > ?"
            )
            args: list[Any] = [after]
            if connection is not None:
                sql += " AND connection = ?"
                args.append(connection)
            return db.execute(sql + f" ORDER BY cursor LIMIT {size}", args).fetchall()

        return await self._run(op)

    async def last_cursor(self, *, connection: str | None = None) -> int:
        """The newest cursor in the log (0 when empty): where a new consumer that wants only future
        changes starts."""

        def op(db: sqlite3.Connection) -> int:
            if connection is None:
                row = db.execute("SELECT MAX(cursor) FROM changes").fetchone()
            else:
                row = db.execute(
                    "SELECT MAX(cursor) FROM changes WHERE connection = ?", (connection,)
                ).fetchone()
            return int(row[0] or 0)

        return await self._run(op)

    async def connections(self) -> builtins.list[str]:
        """The connection keys this store has synced."""

        def op(db: sqlite3.Connection) -> builtins.list[str]:
            return [r[0] for r in db.execute("SELECT DISTINCT connection FROM runs ORDER BY connection")]

        return await self._run(op)

    async def runs(self, *, connection: str | None = None) -> builtins.list[dict[str, Any]]:
        """The sync runs recorded, oldest first (run_id, connection, status, attempts, times)."""

        def op(db: sqlite3.Connection) -> builtins.list[dict[str, Any]]:
            sql = "SELECT run_id, connection, slug, status, started_at, finished_at, attempts FROM runs"
            args: tuple[Any, ...] = ()
            if connection is not None:
                sql += " WHERE connection = ?"
                args = (connection,)
            return [dict(zip(RUN_FIELDS, r, strict=True)) for r in db.execute(sql + " ORDER BY run_id", args)]

        return await self._run(op)
