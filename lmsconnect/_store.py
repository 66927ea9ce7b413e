"""The state store: what `lmsconnect.sync` remembers between reads, and the change feed it writes.

>>> async with lmsconnect.open_store("lms.sqlite") as store:
...     report = await lmsconnect.sync(lms, store)
...     async for change in store.changes(since=cursor):
...         print(change.cursor, change.kind, change.model, change.id)

Per connection (a key naming one tenant of one connector) and model, the store keeps the latest unified
record (``remote_data`` included), a fingerprint of its unified fields, ``changed_at`` and
``remote_deleted_at``; and an append-only change log whose cursor only grows.

`StateStore` is the seam: the sync engine talks to the store only through it, in coarse operations that
each are one transaction (apply a batch of records with its change-log rows; close a model's read with its
deletions), so that a server database can implement the same protocol. `SQLiteStore` is the embedded
default (stdlib ``sqlite3`` in WAL mode, blocking calls run in a worker thread, one at a time).
"""

from __future__ import annotations

import builtins
import contextlib
import datetime as dt
import enum
import hashlib
import json
import os
import socket
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Sequence
from types import TracebackType
from typing import Any, Final, Protocol, TypeVar, overload, runtime_checkable

import anyio
import anyio.to_thread
import attrs
import cattrs

from ._converters import make_converter
from ._errors import LMSConnectError
from ._models import (
    MODELS,
    CourseType,
    ModelName,
    ProgressionStatus,
    Record,
    RevisionStatus,
    UserStatus,
    model_name,
)

__all__ = [
    "SCHEMA_VERSION",
    "BatchResult",
    "Change",
    "ChangeKind",
    "LockHolder",
    "RunInfo",
    "SQLiteStore",
    "StateStore",
    "StoreError",
    "SyncInProgress",
    "fingerprint",
    "open_store",
]

T = TypeVar("T")
M = TypeVar("M", bound=Record)

# Fields that are ours, not the vendor's: they never make a record "changed".
_OWN_FIELDS: Final = ("changed_at", "remote_deleted_at")
_PAGE: Final = 500


class StoreError(LMSConnectError):
    """The state store cannot do what was asked (corrupt, newer schema, lock lost)."""

    code = "STORE.ERROR"


class SyncInProgress(StoreError):
    """Another sync of the same connection holds the store's lock; wait for it or pass ``wait=``."""

    code = "STORE.SYNC_IN_PROGRESS"
    hint = "Wait for the other sync to finish, or call sync(..., wait=seconds)"


class ChangeKind(str, enum.Enum):
    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"

    def __str__(self) -> str:
        return self.value


@attrs.frozen(kw_only=True)
class Change:
    """One entry of the change log. ``cursor`` only grows; remember the last one you processed."""

    cursor: int
    kind: ChangeKind
    model: ModelName
    id: str
    remote_id: str
    connection: str
    at: dt.datetime
    run_id: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "cursor": self.cursor,
            "kind": self.kind.value,
            "model": self.model,
            "id": self.id,
            "remote_id": self.remote_id,
            "connection": self.connection,
            "at": _iso(self.at),
            "run_id": self.run_id,
        }


@attrs.frozen(kw_only=True)
class LockHolder:
    """Who holds a connection's sync lock (for the message of `SyncInProgress`)."""

    connection: str
    owner: str
    host: str
    pid: int
    acquired_at: dt.datetime
    lease_until: dt.datetime


@attrs.frozen(kw_only=True)
class RunInfo:
    """A sync run. ``resumed`` when an interrupted run of the connection is being continued;
    ``complete_models`` are the models that run already finished (and whose deletions are recorded)."""

    run_id: int
    connection: str
    resumed: bool
    complete_models: frozenset[str] = frozenset()


@attrs.frozen(kw_only=True)
class BatchResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    writes: int = 0
    seconds: float = 0.0


@runtime_checkable
class StateStore(Protocol):
    """What the sync engine needs from a store. Every mutating call is one transaction.

    Fencing: mutating calls take the lock ``owner`` token and fail with `StoreError` when the lock is no
    longer theirs, so a sync whose lease expired can never write over the one that took over.
    """

    async def acquire_lock(self, connection: str, owner: str, *, lease_s: float) -> LockHolder | None:
        """Take the connection's lock (``None``), or return who holds it."""

    async def renew_lock(self, connection: str, owner: str, *, lease_s: float) -> bool:
        """Extend the lease; False when the lock is not ours any more."""

    async def release_lock(self, connection: str, owner: str) -> None: ...

    async def begin_run(self, connection: str, *, slug: str, owner: str) -> RunInfo:
        """Continue the connection's interrupted run, or start a new one."""

    async def begin_model(self, run: RunInfo, model: ModelName, *, owner: str) -> None:
        """Start reading a model (from its first record) in this run."""

    async def apply_batch(
        self, run: RunInfo, model: ModelName, records: Sequence[Record], *, owner: str
    ) -> BatchResult:
        """Compare records with the stored ones; upsert them and append their changes atomically, and
        remember their ids as seen by this read of the model."""

    async def finish_model(
        self, run: RunInfo, model: ModelName, *, complete: bool, error: str | None, owner: str
    ) -> int:
        """Close a model's read. Only a complete read marks the records it did not see since
        `begin_model` deleted (returns how many)."""

    async def finish_run(self, run: RunInfo, *, status: str, owner: str) -> None: ...

    async def run_counts(self, run_id: int) -> dict[str, dict[str, int]]:
        """Changes recorded by a run, per model and kind (across its interrupted attempts)."""

    def list(
        self, model: Any, *, connection: str | None = None, include_deleted: bool = True
    ) -> AsyncIterator[Any]: ...

    def changes(
        self, *, since: int = 0, connection: str | None = None, limit: int | None = None
    ) -> AsyncIterator[Change]: ...

    async def get(self, model: Any, id: str, *, connection: str | None = None) -> Any: ...

    async def last_cursor(self, *, connection: str | None = None) -> int: ...

    async def connections(self) -> builtins.list[str]: ...

    async def aclose(self) -> None: ...


# -- fingerprints and serialisation -----------------------------------------------------------------


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _dumps(value: Any) -> str:
    # default=str: remote_data is the vendor's payload and may hold values JSON has no type for.
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _serialise(converter: cattrs.Converter, record: Record) -> tuple[str, str, str]:
    """(fingerprint of the unified fields, stored JSON, hash of remote_data)."""
    data = converter.unstructure(record)
    raw = data.pop("remote_data", None)
    # Unset fields are left out, so a field a later lmsconnect adds (and a connector does not fill) does
    # not make every stored record "updated" after an upgrade. Our own fields are never content.
    unified = _dumps({k: v for k, v in data.items() if v is not None and k not in _OWN_FIELDS})
    # remote_data is outside the fingerprint: a vendor field we do not map (a last-login time) must not
    # make a record "updated"; it is still stored, so `list` returns the latest payload.
    raw_json = _dumps(raw)
    stored = f'{unified[:-1]},"remote_data":{raw_json}}}'
    return _digest(unified), stored, _digest(raw_json)


def _store_converter() -> cattrs.Converter:
    converter = make_converter()
    # make_converter's `str` hook is registered by class, so it shadows its own enum predicate hook for
    # our str-based enums (they come back as plain strings); registering each enum by class wins.
    for cls in (UserStatus, RevisionStatus, ProgressionStatus, CourseType):
        converter.register_structure_hook(cls, lambda value, tp: tp(value))
    return converter


def fingerprint(record: Record) -> str:
    """The content fingerprint of a record's unified fields (not changed_at, remote_deleted_at or
    remote_data): equal fingerprints mean "unchanged"."""
    return _serialise(_store_converter(), record)[0]


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
MIGRATIONS: Final[tuple[Callable[[sqlite3.Connection], None], ...]] = (_v1,)
SCHEMA_VERSION: Final = len(MIGRATIONS)


def _migrate(db: sqlite3.Connection) -> int:
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = db.execute("SELECT version FROM schema_version").fetchone()
        version = row[0] if row else 0
        if row is None:
            db.execute("INSERT INTO schema_version (version) VALUES (0)")
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"the store has schema version {version}, newer than this lmsconnect knows "
                f"({SCHEMA_VERSION})",
                hint="Upgrade lmsconnect, or use another database file",
            )
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


class SQLiteStore:
    """The embedded store: one SQLite file (or ``":memory:"``), WAL mode, one connection used from one
    worker thread at a time. Open it with `open_store`."""

    def __init__(self, path: str | os.PathLike[str] = ":memory:", *, busy_timeout_s: float = 30.0) -> None:
        self.path = os.fspath(path)
        self._busy_timeout_s = busy_timeout_s
        self._db: sqlite3.Connection | None = None
        self._limiter = anyio.CapacityLimiter(1)
        self._converter = _store_converter()
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
                db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode loses nothing on a process crash (kill -9); only a power cut may
            # drop the last commits, and the database stays consistent either way.
            db.execute("PRAGMA synchronous=NORMAL")
            self.schema_version = _migrate(db)
            db.execute(
                "CREATE TEMP TABLE seen (connection TEXT NOT NULL, model TEXT NOT NULL, id TEXT NOT NULL,"
                " PRIMARY KEY (connection, model, id)) WITHOUT ROWID"
            )
        except BaseException:
            db.close()
            raise
        return db

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
                now = time.time()
                if row is not None and row[0] != owner:
                    expired = row[4] < now
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
                    (connection, owner, _HOST, os.getpid(), _now().isoformat(), now + lease_s),
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
            raise StoreError(
                f"the sync lock of {connection!r} was lost (lease expired and another sync took "
                "over); nothing more was written",
                hint="Run the sync again; it resumes where the store is",
            )

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
                    (connection, slug, _iso(_now())),
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
                    (status, _iso(_now()), run.run_id),
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
            return out

        return await self._run(op)

    # -- the two writes of a sync ----------------------------------------------------------------

    async def apply_batch(
        self, run: RunInfo, model: ModelName, records: Sequence[Record], *, owner: str
    ) -> BatchResult:
        # Serialising in the worker thread keeps the event loop free for the concurrent reads.
        def op(db: sqlite3.Connection) -> BatchResult:
            started = time.perf_counter()
            rows = [(r.id, r.remote_id, *_serialise(self._converter, r)) for r in records]
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
        at = _iso(_now())
        known: dict[str, tuple[str, str, str | None]] = {}
        ids = list(dict.fromkeys(r[0] for r in rows))
        for start in range(0, len(ids), _PAGE):
            chunk = ids[start : start + _PAGE]
            marks = ",".join("?" * len(chunk))
            for rid, fp, dh, deleted in db.execute(
                f"SELECT id, fingerprint, data_hash, remote_deleted_at FROM records"
                f" WHERE connection = ? AND model = ? AND id IN ({marks})",
                (run.connection, model, *chunk),
            ):
                known[rid] = (fp, dh, deleted)
        inserts: list[tuple[Any, ...]] = []
        updates: list[tuple[Any, ...]] = []
        data_only: list[tuple[Any, ...]] = []
        changes: list[tuple[Any, ...]] = []
        created = updated = unchanged = 0
        for rid, remote_id, fp, data, dh in rows:
            old = known.get(rid)
            if old is None:
                inserts.append((run.connection, model, rid, remote_id, fp, data, dh, at, at))
                kind: str | None = "created"
            elif old[2] is not None:
                # Back from the dead: the consumer removed it on `deleted`, so it is new to them again.
                updates.append((remote_id, fp, data, dh, at, run.connection, model, rid))
                kind = "created"
            elif old[0] != fp:
                updates.append((remote_id, fp, data, dh, at, run.connection, model, rid))
                kind = "updated"
            else:
                kind = None
                unchanged += 1
                if old[1] != dh:
                    data_only.append((data, dh, run.connection, model, rid))
            if kind is not None:
                changes.append((run.connection, model, rid, remote_id, kind, at, run.run_id))
                if kind == "created":
                    created += 1
                else:
                    updated += 1
            # A record repeated within the batch (a page boundary shifted) compares with its newest self.
            known[rid] = (fp, dh, None)
        db.executemany(
            "INSERT INTO records (connection, model, id, remote_id, fingerprint, data, data_hash,"
            " changed_at, first_seen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            inserts,
        )
        db.executemany(
            "UPDATE records SET remote_id = ?, fingerprint = ?, data = ?, data_hash = ?, changed_at = ?,"
            " remote_deleted_at = NULL WHERE connection = ? AND model = ? AND id = ?",
            updates,
        )
        db.executemany(
            "UPDATE records SET data = ?, data_hash = ? WHERE connection = ? AND model = ? AND id = ?",
            data_only,
        )
        db.executemany(
            "INSERT INTO changes (connection, model, record_id, remote_id, kind, at, run_id)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            changes,
        )
        # What this read of the model saw, for its deletions at the end. A temporary table: it costs no
        # write to the database file, and a crash loses nothing needed, because a model that did not
        # complete is read again from its start.
        db.executemany(
            "INSERT OR IGNORE INTO temp.seen (connection, model, id) VALUES (?, ?, ?)",
            [(run.connection, model, rid) for rid in ids],
        )
        writes = len(inserts) + len(updates) + len(data_only) + len(changes)
        return BatchResult(created=created, updated=updated, unchanged=unchanged, writes=writes)

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
        self, run: RunInfo, model: ModelName, *, complete: bool, error: str | None, owner: str
    ) -> int:
        def op(db: sqlite3.Connection) -> int:
            def body() -> int:
                self._fence(db, run.connection, owner)
                at = _iso(_now())
                deleted = 0
                if complete:
                    where = (
                        "connection = ? AND model = ? AND remote_deleted_at IS NULL AND NOT EXISTS"
                        " (SELECT 1 FROM temp.seen AS s WHERE s.connection = records.connection"
                        " AND s.model = records.model AND s.id = records.id)"
                    )
                    args = (run.connection, model)
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
                db.execute(
                    "INSERT OR REPLACE INTO run_models (run_id, model, status, error, finished_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (run.run_id, model, "complete" if complete else "failed", error, at),
                )
                db.execute(
                    "DELETE FROM temp.seen WHERE connection = ? AND model = ?", (run.connection, model)
                )
                return deleted

            return self._write(db, body)

        return await self._run(op)

    # -- reading back ----------------------------------------------------------------------------

    @overload
    def list(
        self, model: type[M], *, connection: str | None = None, include_deleted: bool = True
    ) -> AsyncIterator[M]: ...
    @overload
    def list(
        self, model: ModelName, *, connection: str | None = None, include_deleted: bool = True
    ) -> AsyncIterator[Record]: ...

    def list(
        self, model: Any, *, connection: str | None = None, include_deleted: bool = True
    ) -> AsyncIterator[Any]:
        """Stream the stored records of `model` (class or key), with ``changed_at`` and
        ``remote_deleted_at`` filled, ordered by connection and id. Memory stays flat: pages of 500.

        >>> async for user in store.list(lmsconnect.User, include_deleted=False):
        ...     print(user.work_email, user.changed_at)
        """
        key = model_name(model)
        return self._stream_records(key, connection, include_deleted)

    async def _stream_records(
        self, key: ModelName, connection: str | None, include_deleted: bool
    ) -> AsyncIterator[Record]:
        cls = MODELS[key]
        last = ("", "")
        while True:

            def page(db: sqlite3.Connection, last: tuple[str, str] = last) -> list[tuple[Any, ...]]:
                sql = (
                    "SELECT connection, id, data, changed_at, remote_deleted_at FROM records"
                    " WHERE model = ? AND (connection, id) > (?, ?)"
                )
                args: list[Any] = [key, *last]
                if connection is not None:
                    sql += " AND connection = ?"
                    args.append(connection)
                if not include_deleted:
                    sql += " AND remote_deleted_at IS NULL"
                sql += f" ORDER BY connection, id LIMIT {_PAGE}"
                return db.execute(sql, args).fetchall()

            rows = await self._run(page)
            for conn, rid, data, changed_at, deleted_at in rows:
                yield self._record(cls, data, changed_at, deleted_at)
                last = (conn, rid)
            if len(rows) < _PAGE:
                return

    def _record(self, cls: type[Record], data: str, changed_at: str, deleted_at: str | None) -> Record:
        values = json.loads(data)
        values["changed_at"] = changed_at
        values["remote_deleted_at"] = deleted_at
        return self._converter.structure(values, cls)

    async def get(self, model: Any, id: str, *, connection: str | None = None) -> Any:
        """The stored record of `model` with our `id` (deleted ones included), or None."""
        key = model_name(model)

        def op(db: sqlite3.Connection) -> tuple[Any, ...] | None:
            sql = "SELECT data, changed_at, remote_deleted_at FROM records WHERE model = ? AND id = ?"
            args: list[Any] = [key, id]
            if connection is not None:
                sql += " AND connection = ?"
                args.append(connection)
            row: tuple[Any, ...] | None = db.execute(sql + " LIMIT 1", args).fetchone()
            return row

        row = await self._run(op)
        return None if row is None else self._record(MODELS[key], *row)

    async def changes(
        self, *, since: int = 0, connection: str | None = None, limit: int | None = None
    ) -> AsyncIterator[Change]:
        """Stream the change log after cursor `since` (exclusive), oldest first.

        >>> async for change in store.changes(since=last_cursor):
        ...     handle(change); last_cursor = change.cursor
        """
        after, left = since, limit
        while left is None or left > 0:
            size = _PAGE if left is None else min(_PAGE, left)

            def page(db: sqlite3.Connection, after: int = after, size: int = size) -> list[tuple[Any, ...]]:
                sql = (
                    "SELECT cursor, kind, model, record_id, remote_id, connection, at, run_id FROM changes"
                    " WHERE cursor > ?"
                )
                args: list[Any] = [after]
                if connection is not None:
                    sql += " AND connection = ?"
                    args.append(connection)
                return db.execute(sql + f" ORDER BY cursor LIMIT {size}", args).fetchall()

            rows = await self._run(page)
            for cursor, kind, model, rid, remote_id, conn, at, run_id in rows:
                yield Change(
                    cursor=cursor,
                    kind=ChangeKind(kind),
                    model=model,
                    id=rid,
                    remote_id=remote_id,
                    connection=conn,
                    at=dt.datetime.fromisoformat(at.replace("Z", "+00:00")),
                    run_id=run_id,
                )
                after = cursor
            if left is not None:
                left -= len(rows)
            if len(rows) < size:
                return

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
            names = ("run_id", "connection", "slug", "status", "started_at", "finished_at", "attempts")
            return [dict(zip(names, r, strict=True)) for r in db.execute(sql + " ORDER BY run_id", args)]

        return await self._run(op)


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
