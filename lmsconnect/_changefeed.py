"""What a change is: the semantics every state store shares, whatever its database.

Each store (`SQLiteStore`, `PostgresStore`) is only its engine's SQL, transactions and locking; every rule
of the change feed lives here, once:

- the fingerprint of a record (`serialise`, `fingerprint`): which fields make a record "changed";
- how a batch of records compares with the stored ones (`plan_batch`): ``created`` (new, or back from the
  dead), ``updated`` (a unified field changed), unchanged (maybe with a new ``remote_data``);
- when a model's unseen records are marked ``deleted`` (`DeletionGuard.holds`): only after a complete
  read, and not when that would delete more of the model than the guard allows without confirmation;
- how a run resumes (`RunInfo`): an interrupted run of a connection is continued, skipping the models it
  completed;
- how stored rows and caller input are checked on the way in and out (`resolve_model`, `since_cursor`,
  `decode_record`, `decode_change`): an unknown model is `InvalidInput`, a corrupt row a `StoreError`
  naming the row.

The `StateStore` protocol is the seam between the sync engine and a store.
"""

from __future__ import annotations

import builtins
import datetime as dt
import enum
import hashlib
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any, Final, Protocol, TypeVar, overload, runtime_checkable

import attrs
import cattrs

from ._converters import make_converter, parse_datetime
from ._errors import InvalidInput, LMSConnectError, trim
from ._models import ENUMS, MODELS, ModelName, Record, model_name

__all__ = [
    "DELETIONS_HELD",
    "PAGE",
    "RUN_FIELDS",
    "SCHEMA_VERSION",
    "BatchPlan",
    "BatchResult",
    "Change",
    "ChangeKind",
    "DeletionGuard",
    "FeedReader",
    "LockHolder",
    "ModelFinish",
    "RunInfo",
    "StateStore",
    "StoreError",
    "SyncInProgress",
    "check_limit",
    "check_schema_version",
    "decode_change",
    "decode_record",
    "deletions_kept",
    "fingerprint",
    "iso",
    "lock_lost",
    "now",
    "plan_batch",
    "record_where",
    "resolve_model",
    "serialise",
    "since_cursor",
    "store_converter",
]

# Fields that are ours, not the vendor's: they never make a record "changed".
_OWN_FIELDS: Final = ("changed_at", "remote_deleted_at")
# Rows per page when a store streams records or changes back (memory stays flat).
PAGE: Final = 500
# The schema version both stores are at: migration i brings a store from version i to i + 1. Each engine
# has its own SQL for each step; the numbering is shared so that a version means the same content.
# 1: records, changes, runs, run_models, locks.  2: run_models.held (deletions held by the guard).
SCHEMA_VERSION: Final = 2
# The stable code of a model whose deletions the guard held back.
DELETIONS_HELD: Final = "SYNC.DELETIONS_HELD"


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
            "at": iso(self.at),
            "run_id": self.run_id,
        }


@attrs.frozen(kw_only=True)
class LockHolder:
    """Who holds a connection's sync lock (for the message of `SyncInProgress`). ``host`` and ``pid``
    are informational: the lock itself is the lease."""

    connection: str
    owner: str
    host: str
    pid: int
    acquired_at: dt.datetime
    lease_until: dt.datetime


@attrs.frozen(kw_only=True)
class RunInfo:
    """A sync run. ``resumed`` when an interrupted run of the connection is being continued (a store's
    `begin_run` continues the newest ``running`` run of the connection rather than start another);
    ``complete_models`` are the models that run already finished (and whose deletions are recorded),
    which the resumed run skips."""

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


@attrs.frozen(kw_only=True)
class ModelFinish:
    """How a model's read was closed: ``deleted`` records marked deleted, or ``held`` records the read
    did not see but the guard kept (none marked deleted); ``stored`` live records before the read."""

    deleted: int = 0
    held: int = 0
    stored: int = 0


@attrs.frozen(kw_only=True)
class DeletionGuard:
    """The mass-deletion guard: a complete read that would mark more than ``max_ratio`` of a model's
    stored (live) records deleted, and more than ``floor`` of them, marks none of them deleted until an
    operator confirms (``sync(..., confirm_deletions=...)``).

    The default (10 %, floor 10) catches the accidents seen in practice — a wrong but well-formed answer
    that lists 1 of 50 users, a page of mangled ids — which remove a large share of a model at once,
    while ordinary churn (people leaving, a course and its enrolments removed in a big tenant) passes.
    The floor keeps a small tenant, where one removed course is a large share, from needing confirmation
    for a handful of records. Directory-sync tools do the same: Azure AD Connect refuses an export that
    deletes more than 500 objects unless confirmed; a ratio scales to tenants of any size.

    >>> lmsconnect.sync(lms, store, deletion_guard=lmsconnect.DeletionGuard(max_ratio=0.02, floor=50))
    """

    max_ratio: float = 0.10
    floor: int = 10

    def __attrs_post_init__(self) -> None:
        if not 0 <= self.max_ratio <= 1:
            raise InvalidInput("max_ratio must be between 0 and 1", field="max_ratio")
        if self.floor < 0:
            raise InvalidInput("floor must be >= 0", field="floor")

    def holds(self, unseen: int, stored: int) -> bool:
        """True when marking `unseen` of `stored` live records deleted needs a confirmation."""
        return unseen > self.floor and unseen > self.max_ratio * stored

    def describe(self) -> str:
        return f"more than {self.max_ratio:.0%} of the stored records and more than {self.floor}"


def deletions_kept(guard: DeletionGuard | None, unseen: int, stored: int) -> ModelFinish | None:
    """How a complete read of a model ends when nothing is to be marked deleted: none unseen, or the
    guard holds them (`held`). None: the store marks the `unseen` records deleted."""
    if not unseen:
        return ModelFinish(stored=stored)
    if guard is not None and guard.holds(unseen, stored):
        return ModelFinish(held=unseen, stored=stored)
    return None


def lock_lost(connection: str) -> StoreError:
    """What a fenced write raises when the connection's lock is no longer its owner's."""
    return StoreError(
        f"the sync lock of {connection!r} was lost (lease expired and another sync took "
        "over); nothing more was written",
        hint="Run the sync again; it resumes where the store is",
    )


def check_schema_version(version: int, store: str) -> None:
    """Refuse a store a newer lmsconnect wrote (its rows may mean something this one does not know)."""
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"the store {store} has schema version {version}, newer than this lmsconnect knows "
            f"({SCHEMA_VERSION})",
            hint="Upgrade lmsconnect, or use another database file or schema",
        )


# The columns of `runs()`, the sync runs a store recorded.
RUN_FIELDS: Final = ("run_id", "connection", "slug", "status", "started_at", "finished_at", "attempts")


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
        """Compare records with the stored ones (`plan_batch`); upsert them and append their changes
        atomically, and remember their ids as seen by this read of the model."""

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
        """Close a model's read. Only a complete read marks the records it did not see since
        `begin_model` deleted, and only when `guard` (None: no guard) does not hold them."""

    async def finish_run(self, run: RunInfo, *, status: str, owner: str) -> None: ...

    async def run_counts(self, run_id: int) -> dict[str, dict[str, int]]:
        """Changes recorded by a run, per model and kind (across its interrupted attempts), and under
        ``"held"`` the deletions the guard held back."""

    def list(
        self, model: Any, *, connection: str | None = None, include_deleted: bool = True
    ) -> AsyncIterator[Any]: ...

    def changes(
        self, *, since: int | None = 0, connection: str | None = None, limit: int | None = None
    ) -> AsyncIterator[Change]: ...

    async def get(self, model: Any, id: str, *, connection: str | None = None) -> Any: ...

    async def last_cursor(self, *, connection: str | None = None) -> int: ...

    async def connections(self) -> builtins.list[str]: ...

    async def aclose(self) -> None: ...


# -- fingerprints and serialisation -----------------------------------------------------------------


def iso(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _dumps(value: Any) -> str:
    # default=str: remote_data is the vendor's payload and may hold values JSON has no type for. JSON
    # escapes control characters, so the text never holds a NUL (PostgreSQL text refuses those).
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def serialise(converter: cattrs.Converter, record: Record) -> tuple[str, str, str]:
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


def store_converter() -> cattrs.Converter:
    converter = make_converter()
    # make_converter's `str` hook is registered by class, so it shadows its own enum predicate hook for
    # our str-based enums (they come back as plain strings); registering each enum by class wins.
    for cls in ENUMS:
        converter.register_structure_hook(cls, lambda value, tp: tp(value))
    return converter


def fingerprint(record: Record) -> str:
    """The content fingerprint of a record's unified fields (not changed_at, remote_deleted_at or
    remote_data): equal fingerprints mean "unchanged"."""
    return serialise(store_converter(), record)[0]


# -- comparing a batch with the store ----------------------------------------------------------------

# (id, remote_id, fingerprint, stored JSON, remote_data hash)
Row = tuple[str, str, str, str, str]


@attrs.frozen(kw_only=True)
class BatchPlan:
    """What a store writes for one batch: rows to insert, to update (content changed, or back from the
    dead), to refresh (remote_data only), the change-log entries ``(id, remote_id, kind)`` in reading
    order, and the distinct ids the batch saw."""

    inserts: builtins.list[Row]
    updates: builtins.list[Row]
    data_only: builtins.list[tuple[str, str, str]]  # (id, stored JSON, remote_data hash)
    changes: builtins.list[tuple[str, str, str]]
    ids: builtins.list[str]
    created: int
    updated: int
    unchanged: int

    @property
    def writes(self) -> int:
        return len(self.inserts) + len(self.updates) + len(self.data_only) + len(self.changes)

    def result(self) -> BatchResult:
        return BatchResult(
            created=self.created, updated=self.updated, unchanged=self.unchanged, writes=self.writes
        )


def plan_batch(rows: Sequence[Row], known: dict[str, tuple[str, str, bool]]) -> BatchPlan:
    """Compare serialised records with what the store holds: ``known`` maps an id to its stored
    (fingerprint, remote_data hash, marked deleted). At most one change per record and batch."""
    known = dict(known)
    inserts: list[Row] = []
    updates: list[Row] = []
    data_only: list[tuple[str, str, str]] = []
    changes: list[tuple[str, str, str]] = []
    created = updated = unchanged = 0
    for row in rows:
        rid, remote_id, fp, data, dh = row
        old = known.get(rid)
        kind: str | None
        if old is None:
            inserts.append(row)
            kind = "created"
        elif old[2]:
            # Back from the dead: the consumer removed it on `deleted`, so it is new to them again.
            updates.append(row)
            kind = "created"
        elif old[0] != fp:
            updates.append(row)
            kind = "updated"
        else:
            kind = None
            unchanged += 1
            if old[1] != dh:
                data_only.append((rid, data, dh))
        if kind is not None:
            changes.append((rid, remote_id, kind))
            if kind == "created":
                created += 1
            else:
                updated += 1
        # A record repeated within the batch (a page boundary shifted) compares with its newest self.
        known[rid] = (fp, dh, False)
    return BatchPlan(
        inserts=inserts,
        updates=updates,
        data_only=data_only,
        changes=changes,
        ids=builtins.list(dict.fromkeys(r[0] for r in rows)),
        created=created,
        updated=updated,
        unchanged=unchanged,
    )


# -- checking what comes in and what comes back ------------------------------------------------------


def resolve_model(model: Any) -> ModelName:
    """A model key from a key or class; `InvalidInput` naming the valid keys otherwise."""
    try:
        return model_name(model)
    except ValueError as exc:
        raise InvalidInput(str(exc), field="model") from None


def since_cursor(since: int | None) -> int:
    """The cursor `changes` reads after. ``None`` means the start of the log (as 0 does): a consumer
    with no saved cursor yet gets everything, never silently nothing."""
    if since is None:
        return 0
    if isinstance(since, bool) or not isinstance(since, int) or since < 0:
        raise InvalidInput(
            f"since must be a cursor (an integer >= 0) or None for the start of the log, not {since!r}",
            field="since",
        )
    return since


def check_limit(limit: int | None) -> None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise InvalidInput(f"limit must be an integer >= 0 or None, not {limit!r}", field="limit")


_DECODE_ERRORS: Final = (
    ValueError, TypeError, KeyError, AttributeError, RecursionError, cattrs.BaseValidationError
)


def _corrupt(where: str, exc: BaseException) -> StoreError:
    return StoreError(
        f"corrupt row in the store: {where}: {type(exc).__name__}: {trim(str(exc), 200)}",
        hint="Restore the store from a backup, or delete the row and sync again",
    )


def decode_record(
    converter: cattrs.Converter,
    cls: type[Record],
    where: str,
    data: Any,
    changed_at: Any,
    deleted_at: Any,
) -> Record:
    """A stored record back as its model; `StoreError` naming the row (`where`) when it does not fit."""
    try:
        values = json.loads(data)
        if not isinstance(values, dict):
            raise TypeError(f"expected a JSON object, got {type(values).__name__}")
        values["changed_at"] = changed_at
        values["remote_deleted_at"] = deleted_at
        return converter.structure(values, cls)
    except _DECODE_ERRORS as exc:
        raise _corrupt(where, exc) from None


def decode_change(row: Sequence[Any]) -> Change:
    """A change-log row ``(cursor, kind, model, record_id, remote_id, connection, at, run_id)``."""
    cursor = row[0]
    try:
        _, kind, model, rid, remote_id, conn, at, run_id = row
        for name, value in (("model", model), ("id", rid), ("remote_id", remote_id), ("connection", conn)):
            if not isinstance(value, str):
                raise TypeError(f"{name} is {type(value).__name__}, not text")
        return Change(
            cursor=int(cursor),
            kind=ChangeKind(kind),
            model=resolve_model(model),
            id=rid,
            remote_id=remote_id,
            connection=conn,
            at=parse_datetime(at),
            run_id=int(run_id),
        )
    except (*_DECODE_ERRORS, InvalidInput) as exc:
        raise _corrupt(f"changes row cursor={cursor!r}", exc) from None


def record_where(connection: str, model: str, rid: str) -> str:
    return f"records row (connection={connection!r}, model={model!r}, id={rid!r})"


# -- the read side, on top of an engine's three page queries -----------------------------------------

M = TypeVar("M", bound=Record)


class FeedReader:
    """`list`, `get` and `changes` for any engine: the paging, filtering and decoding are here once; a
    store supplies the three queries (`_records_page`, `_record_row`, `_changes_page`)."""

    _converter: cattrs.Converter

    async def _records_page(
        self, model: ModelName, connection: str | None, include_deleted: bool, after: tuple[str, str]
    ) -> Sequence[Sequence[Any]]:
        """Up to `PAGE` rows ``(connection, id, data, changed_at, remote_deleted_at)`` of `model`
        after ``(connection, id)`` = `after`, in that order."""
        raise NotImplementedError

    async def _record_row(
        self, model: ModelName, id: str, connection: str | None
    ) -> Sequence[Any] | None:
        """One row ``(connection, id, data, changed_at, remote_deleted_at)``, or None."""
        raise NotImplementedError

    async def _changes_page(
        self, after: int, connection: str | None, size: int
    ) -> Sequence[Sequence[Any]]:
        """Up to `size` change rows (see `decode_change`) with ``cursor > after``, by cursor."""
        raise NotImplementedError

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
        key = resolve_model(model)
        return self._stream_records(key, connection, include_deleted)

    async def _stream_records(
        self, key: ModelName, connection: str | None, include_deleted: bool
    ) -> AsyncIterator[Record]:
        last = ("", "")
        while True:
            rows = await self._records_page(key, connection, include_deleted, last)
            for row in rows:
                yield self._decode(key, row)
                last = (row[0], row[1])
            if len(rows) < PAGE:
                return

    def _decode(self, key: ModelName, row: Sequence[Any]) -> Record:
        conn, rid, data, changed_at, deleted_at = row
        return decode_record(
            self._converter, MODELS[key], record_where(conn, key, rid), data, changed_at, deleted_at
        )

    async def get(self, model: Any, id: str, *, connection: str | None = None) -> Any:
        """The stored record of `model` with our `id` (deleted ones included), or None."""
        key = resolve_model(model)
        row = await self._record_row(key, id, connection)
        return None if row is None else self._decode(key, row)

    async def changes(
        self, *, since: int | None = 0, connection: str | None = None, limit: int | None = None
    ) -> AsyncIterator[Change]:
        """Stream the change log after cursor `since` (exclusive; ``None`` or 0: from the start), oldest
        first.

        >>> async for change in store.changes(since=last_cursor):
        ...     handle(change); last_cursor = change.cursor
        """
        after, left = since_cursor(since), limit
        check_limit(limit)
        while left is None or left > 0:
            size = PAGE if left is None else min(PAGE, left)
            rows = await self._changes_page(after, connection, size)
            for row in rows:
                change = decode_change(row)
                yield change
                after = change.cursor
            if left is not None:
                left -= len(rows)
            if len(rows) < size:
                return
