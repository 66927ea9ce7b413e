"""The sync engine: read every model of a connector into a `StateStore`, recording what changed.

>>> async with lmsconnect.connect("moodle", **config) as lms, lmsconnect.open_store("lms.sqlite") as store:
...     report = await lmsconnect.sync(lms, store)
...     print(report.summary_table())

How a run goes (docs/sync.md has the semantics a consumer relies on):

1. take the connection's lock in the store (a lease row, renewed while the run lasts; a second sync of the
   same connection waits up to ``wait`` seconds, then raises `SyncInProgress`);
2. continue the connection's interrupted run if there is one (a crash or a kill left it ``running``),
   else start a new one;
3. read the models concurrently (each within the connector's own rate budgets), and apply each batch of
   records in one transaction that upserts them and appends their ``created`` / ``updated`` changes;
4. when a model's read completed, mark what the run did not see as deleted, in one transaction with the
   model's "complete" mark; a model whose read failed marks nothing deleted, and neither does one whose
   deletions the mass-deletion guard holds (`DeletionGuard`) until ``confirm_deletions`` accepts them;
5. close the run and release the lock.

Every step is idempotent against a re-run of the same run: a record already applied compares equal and
writes nothing, so a run killed at any moment and resumed records each change exactly once.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import inspect
import json
import sys
import time
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Final, Literal, ParamSpec, TextIO

import anyio
import attrs

from . import _telemetry as telemetry
from ._changefeed import DELETIONS_HELD, DeletionGuard, resolve_model
from ._connector import Connector
from ._errors import AuthenticationError, ConfigurationError, LMSConnectError, RateLimited
from ._http import HOST_UNRESOLVED
from ._models import MODELS, ModelName, Record
from ._progress import ReadMeter, current_meter, set_meter
from ._store import (
    StateStore,
    StoreError,
    SyncInProgress,
    open_store,
)
from ._store_postgres import is_postgres_url

__all__ = [
    "ModelReport",
    "SyncProgress",
    "SyncReport",
    "cli_changes",
    "cli_sync",
    "connection_key",
    "sync",
]

ModelStatus = Literal["reading", "complete", "failed", "skipped", "not_run"]
ProgressCallback = Callable[["SyncProgress"], "Awaitable[None] | None"]
_KINDS: Final = ("created", "updated", "deleted")
_NOT_DONE: Final = ("failed", "not_run")
#: Codes of errors that fail the whole connection, not one model (see `SyncReport.stopped`).
_STOP_CODES: Final = (AuthenticationError.code, HOST_UNRESOLVED)


@attrs.frozen(kw_only=True)
class SyncProgress:
    """Where one model's read stands; sent to the progress callback after every batch and at the end.

    Counts are of this attempt (a resumed run re-reads records it had already applied: ``unchanged``).
    """

    model: ModelName
    status: ModelStatus
    read: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    held_deletions: int = 0
    error: str | None = None
    error_code: str | None = None
    # Set while the read waits for the connection's rate budget (a spent hourly plan budget): until when.
    waiting_until: dt.datetime | None = None
    #: Records the read will yield, when the vendor announced it (`lmsconnect.plugin.announce_total`).
    total: int | None = None
    #: Pages (or per-item calls) read of how many, when the vendor announced the count of pages only
    #: (`lmsconnect.plugin.announce_pages`).
    pages_done: int | None = None
    pages_total: int | None = None
    #: HTTP calls this model's read made so far (retries included).
    calls: int = 0
    #: Seconds since this model's read started.
    elapsed_s: float = 0.0

    @property
    def fraction(self) -> float | None:
        """How much of the read is done (0..1), from an announced total or page count; None if unknown."""
        if self.status == "complete":
            return 1.0
        if self.total is not None:
            return min(self.read / self.total, 1.0) if self.total else 1.0
        if self.pages_total:
            return min((self.pages_done or 0) / self.pages_total, 1.0)
        return None

    @property
    def rate(self) -> float | None:
        """Records read per second so far (waits included); None before a second has passed."""
        return self.read / self.elapsed_s if self.elapsed_s >= 1.0 else None

    @property
    def eta_s(self) -> float | None:
        """Seconds until the read ends at the pace so far, when its size is known; else None."""
        fraction = self.fraction
        if self.status != "reading" or not fraction or fraction >= 1.0 or self.elapsed_s < 1.0:
            return None
        return self.elapsed_s * (1.0 - fraction) / fraction


@attrs.frozen(kw_only=True)
class ModelReport:
    """One model's outcome. ``created``/``updated``/``deleted`` are the run's entries in the change log
    (exact, across interrupted attempts); ``read`` and ``unchanged`` are of the last attempt.

    ``status`` is ``complete``, ``failed`` (read failed part-way: nothing was marked deleted),
    ``skipped`` (a resumed run had already completed this model before it was interrupted), or
    ``not_run`` (another model's read found the credentials rejected or the host unknown, so this one
    was not tried: it would have failed the same way).
    A failed or not-run model carries the error's stable ``error_code`` (e.g. ``REMOTE.AUTHENTICATION``,
    ``REMOTE.RATE_LIMITED``; None for an error that is not an `LMSConnectError`), and ``retry_after``
    (seconds) when the vendor said how long to wait.
    ``held_deletions`` > 0: the read was complete, but the mass-deletion guard kept that many unseen
    records from being marked deleted (``code`` is ``SYNC.DELETIONS_HELD``); confirm them with
    ``sync(..., confirm_deletions=[model])`` once you know they are really gone.
    """

    model: ModelName
    status: ModelStatus
    read: int = 0
    created: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    held_deletions: int = 0
    error: str | None = None
    detail: str | None = None
    error_code: str | None = None
    retry_after: float | None = None

    @property
    def code(self) -> str | None:
        """The outcome's code: ``error_code`` when the model failed or was not run,
        ``SYNC.DELETIONS_HELD`` when the guard held deletions back, else None."""
        if self.error_code:
            return self.error_code
        return DELETIONS_HELD if self.held_deletions else None


@attrs.frozen(kw_only=True)
class SyncReport:
    """What a sync did: per model and change kind, HTTP calls made, time taken."""

    connection: str
    run_id: int
    resumed: bool
    models: Mapping[str, ModelReport]
    calls: int
    duration_s: float
    store_writes: int = 0
    store_s: float = 0.0
    #: The error that stopped the sync (credentials rejected, host name unknown): the ``not_run``
    #: models were not tried because every read would have failed the same way. None otherwise.
    stopped: LMSConnectError | None = attrs.field(default=None, eq=False, repr=False)

    @property
    def ok(self) -> bool:
        """True when every model was read completely."""
        return all(m.status not in _NOT_DONE for m in self.models.values())

    @property
    def failed(self) -> tuple[str, ...]:
        """Models not read completely: ``failed`` ones and ``not_run`` ones."""
        return tuple(k for k, m in self.models.items() if m.status in _NOT_DONE)

    @property
    def error_codes(self) -> dict[str, str | None]:
        """Each failed (or not-run) model's stable error code, e.g. ``{"users": "REMOTE.AUTHENTICATION"}``
        (None for an error that is not an `LMSConnectError`)."""
        return {k: m.error_code for k, m in self.models.items() if m.status in _NOT_DONE}

    @property
    def held(self) -> dict[str, int]:
        """Models whose deletions the mass-deletion guard held back (``SYNC.DELETIONS_HELD``), with how
        many records each; confirm with ``sync(..., confirm_deletions=list(report.held))``."""
        return {k: m.held_deletions for k, m in self.models.items() if m.held_deletions}

    @property
    def totals(self) -> dict[str, int]:
        """Changes recorded by the run, per kind."""
        return {k: sum(getattr(m, k) for m in self.models.values()) for k in _KINDS}

    def to_dict(self) -> dict[str, Any]:
        return {
            "connection": self.connection,
            "run_id": self.run_id,
            "resumed": self.resumed,
            "ok": self.ok,
            "calls": self.calls,
            "duration_s": round(self.duration_s, 3),
            "store_writes": self.store_writes,
            "totals": self.totals,
            "held_deletions": self.held,
            "codes": sorted({m.code for m in self.models.values() if m.code}),
            "error_codes": self.error_codes,
            "models": {k: {**attrs.asdict(m), "code": m.code} for k, m in self.models.items()},
        }

    def summary_table(self) -> str:
        """A plain-text table, one line per model, then the totals."""
        head = ("model", "status", "read", "created", "updated", "deleted", "unchanged")
        rows: list[tuple[str, ...]] = [
            (m.model, m.status, str(m.read), str(m.created), str(m.updated), str(m.deleted), str(m.unchanged))
            for m in self.models.values()
        ]
        totals = self.totals
        rows.append(
            (
                "total",
                "ok" if self.ok else "PARTIAL",
                str(sum(m.read for m in self.models.values())),
                str(totals["created"]),
                str(totals["updated"]),
                str(totals["deleted"]),
                str(sum(m.unchanged for m in self.models.values())),
            )
        )
        widths = [max(len(r[i]) for r in (head, *rows)) for i in range(len(head))]

        def line(cells: Sequence[str]) -> str:
            return "  ".join(
                c.ljust(w) if i < 2 else c.rjust(w)
                for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            ).rstrip()

        out = [line(head), line(["-" * w for w in widths])]
        out += [line(r) for r in rows[:-1]]
        out += [line(["-" * w for w in widths]), line(rows[-1])]
        not_run = [m.model for m in self.models.values() if m.status == "not_run"]
        for m in self.models.values():
            if m.error and m.status == "failed":
                out.append(f"{m.model} failed: {m.error} (nothing was marked deleted)")
            if m.held_deletions:
                out.append(
                    f"{m.model}: {m.held_deletions} deletions held ({DELETIONS_HELD}): "
                    f"{m.detail or 'the mass-deletion guard held them'}; nothing was marked deleted. "
                    f"If they are really gone: --confirm-deletions {m.model} "
                    f"(sync(..., confirm_deletions=[{m.model!r}]))"
                )
        if not_run:
            out.append(
                f"not run: {', '.join(not_run)} ({self.models[not_run[0]].error_code}: every read would "
                f"fail the same way; nothing was marked deleted)"
            )
        out.append(
            f"run {self.run_id}{' (resumed)' if self.resumed else ''} of {self.connection}: "
            f"{self.calls} HTTP calls, {self.duration_s:.2f} s"
        )
        return "\n".join(out) + "\n"


def connection_key(connector: Connector[Any]) -> str:
    """The default store key of a connection: the slug and a stable hash of its non-secret config.

    Secrets are left out so that rotating a key keeps the history; pass ``connection=`` to `sync` to
    name a connection yourself when other settings (a rate-limit option) may change.
    """
    values = {
        f.name: getattr(connector.config, f.name, None) for f in connector.spec.config_fields if not f.secret
    }
    text = json.dumps(values, sort_keys=True, default=str)
    return f"{connector.slug}:{hashlib.blake2b(text.encode(), digest_size=6).hexdigest()}"


def _model_keys(
    connector: Connector[Any], models: Iterable[ModelName | type[Record]] | None
) -> list[ModelName]:
    caps = connector.capabilities.models
    if models is None:
        # Models that cost extra calls (ModelCapability.by_default False) are read only when named.
        return [k for k in MODELS if k in caps and caps[k].supported and caps[k].by_default]
    if isinstance(models, str):
        models = [models]  # type: ignore[list-item]  # one key given bare: checked by resolve_model
    keys = []
    for m in models:
        key = resolve_model(m)
        connector.capabilities.require_model(key)
        if key not in keys:
            keys.append(key)
    return keys


class _Run:
    """The mutable state of one sync call (kept off the public report, which is frozen)."""

    def __init__(
        self,
        store: StateStore,
        owner: str,
        batch_size: int,
        progress: ProgressCallback | None,
        guards: Mapping[ModelName, DeletionGuard | None],
        progress_every: float = 1.0,
    ) -> None:
        self.store = store
        self.owner = owner
        self.batch_size = batch_size
        self.progress = progress
        self.guards = guards
        self.reports: dict[str, ModelReport] = {}
        self.writes = 0
        self.store_s = 0.0
        self.every = progress_every
        # The live state of each model's read while it lasts (for the periodic progress events).
        self.meters: dict[str, ReadMeter] = {}
        # Set once the first model's read has got a page (or ended): the credentials were tried once.
        self.tried = anyio.Event()
        # The error that stopped the sync (credentials rejected, host unknown): every other model's read
        # would fail the same way, so they are not tried.
        self.rejected: LMSConnectError | None = None

    def snapshot(self, meter: ReadMeter) -> SyncProgress:
        """A reading model's progress now (a wait that has ended is no longer shown)."""
        now = time.monotonic()
        until = meter.waiting_until
        if until is not None and until <= dt.datetime.now(dt.timezone.utc):
            until = meter.waiting_until = None
        return SyncProgress(
            model=meter.model,  # type: ignore[arg-type]  # a ModelName, set by _read_model
            status="reading",
            read=meter.read,
            created=meter.created,
            updated=meter.updated,
            unchanged=meter.unchanged,
            waiting_until=until,
            total=meter.total,
            pages_done=meter.pages_done,
            pages_total=meter.pages_total,
            calls=meter.calls,
            elapsed_s=now - meter.started,
        )

    async def tell_reading(self, meter: ReadMeter) -> None:
        meter.told = time.monotonic()
        await self.tell(self.snapshot(meter))

    async def tick(self) -> None:
        """Every ``every`` seconds, the progress of each model still reading that said nothing since."""
        while True:
            await anyio.sleep(self.every)
            for meter in list(self.meters.values()):
                if time.monotonic() - meter.told >= self.every * 0.9:
                    await self.tell_reading(meter)

    async def tell(self, event: SyncProgress) -> None:
        if self.progress is not None:
            result = self.progress(event)
            if inspect.isawaitable(result):
                await result


def _stops_sync(exc: Exception) -> LMSConnectError | None:
    """`exc` when it fails the whole connection, not one model: rejected credentials, a host that
    does not resolve."""
    if isinstance(exc, (AuthenticationError, ConfigurationError)) and exc.code in _STOP_CODES:
        return exc
    return None


async def _read_model(connector: Connector[Any], run: Any, key: ModelName, state: _Run) -> None:
    meter = ReadMeter(model=key, started=time.monotonic(), watched=_watched(state.progress))
    meter.told = meter.started
    error: str | None = None
    failure: Exception | None = None
    batch: list[Record] = []

    async def flush() -> None:
        if not batch:
            return
        result = await state.store.apply_batch(run, key, batch, owner=state.owner)
        batch.clear()
        meter.created += result.created
        meter.updated += result.updated
        meter.unchanged += result.unchanged
        state.writes += result.writes
        state.store_s += result.seconds
        await state.tell_reading(meter)

    set_meter(meter)  # this task's read: the transport counts its calls, the connector its total
    state.meters[key] = meter
    await state.store.begin_model(run, key, owner=state.owner)
    stream: AsyncGenerator[Record, None] = connector.list(key)  # type: ignore[assignment]
    try:
        while True:
            try:
                record = await stream.__anext__()
            except StopAsyncIteration:
                break
            except Exception as exc:  # any read failure fails this model, not the sync
                error = f"{type(exc).__name__}: {exc}"
                failure = exc
                if state.rejected is None:
                    state.rejected = _stops_sync(exc)
                break
            state.tried.set()
            meter.read += 1
            batch.append(record)
            if len(batch) >= state.batch_size:
                await flush()
        # What was read before a failure is real: apply it. Only deletions need a complete read.
        await flush()
    finally:
        state.tried.set()
        state.meters.pop(key, None)
        with anyio.CancelScope(shield=True):
            await stream.aclose()
    guard = state.guards.get(key)
    finish = await state.store.finish_model(
        run, key, complete=error is None, error=error, owner=state.owner, guard=guard
    )
    deleted = finish.deleted
    status: ModelStatus = "complete" if error is None else "failed"
    state.writes += 2 * deleted
    detail = None
    if finish.held and guard is not None:
        detail = (
            f"{finish.held} of {finish.stored} stored records were missing from the read, "
            f"{guard.describe()} the guard allows"
        )
    state.reports[key] = ModelReport(
        model=key,
        status=status,
        read=meter.read,
        unchanged=meter.unchanged,
        error=error,
        detail=detail,
        error_code=failure.code if isinstance(failure, LMSConnectError) else None,
        retry_after=failure.retry_after if isinstance(failure, RateLimited) else None,
    )
    await state.tell(
        attrs.evolve(
            state.snapshot(meter),
            status=status,
            waiting_until=None,
            deleted=deleted,
            held_deletions=finish.held,
            error=error,
            error_code=state.reports[key].error_code,
        )
    )


def _wait_reporter(state: _Run) -> Callable[[Any], Awaitable[None]]:
    """The transport's wait listener for one sync: the waiting model's progress, with `waiting_until`."""

    async def report(wait: Any) -> None:
        meter = current_meter()
        if meter is None or state.meters.get(meter.model) is not meter:
            return
        # The reads share the connection's budget: every model still reading waits for it too. Every
        # call queued behind one spent budget reports the same wait: said once.
        for other in list(state.meters.values()):
            known = other.waiting_until
            if known is None or wait.until > known + dt.timedelta(seconds=1):
                other.waiting_until = wait.until
                await state.tell_reading(other)

    return report


def _single(exc: BaseException) -> BaseException:
    """The one error inside (nested) exception groups of one error each; else `exc` itself."""
    while True:
        inner = getattr(exc, "exceptions", None)
        if not isinstance(inner, tuple) or len(inner) != 1:
            return exc
        exc = inner[0]


async def _acquire(store: StateStore, key: str, owner: str, *, wait: float, lease_s: float) -> None:
    deadline = time.monotonic() + wait
    while True:
        holder = await store.acquire_lock(key, owner, lease_s=lease_s)
        if holder is None:
            return
        left = deadline - time.monotonic()
        if left <= 0:
            raise SyncInProgress(
                f"another sync of {key!r} is running (pid {holder.pid} on {holder.host}, since "
                f"{holder.acquired_at:%Y-%m-%d %H:%M:%S}Z, lease until "
                f"{holder.lease_until:%H:%M:%S}Z)",
                connector=key.split(":", 1)[0],
            )
        await anyio.sleep(min(0.2, left))


# -- telemetry (docs/observability.md): kept apart from the engine, which it only observes -------------

_P = ParamSpec("_P")


class _SyncObserver:
    """The progress callback of a sync while telemetry is on: turns each model's cumulative counts into
    the ``lmsconnect.sync.*`` counters as they grow, keeps each model's last event for its read span,
    and hands every event on to the caller's own callback."""

    def __init__(self, slug: str, forward: ProgressCallback | None) -> None:
        self.slug = slug
        self.forward = forward
        self.last: dict[str, SyncProgress] = {}

    async def __call__(self, event: SyncProgress) -> None:
        before = self.last.get(event.model)
        self.last[event.model] = event
        meters = telemetry.instruments()
        where = {telemetry.CONNECTOR: self.slug, telemetry.MODEL: event.model}
        grown = event.read - (before.read if before else 0)
        if grown > 0:
            meters.records_read.add(grown, where)
        for kind in _KINDS:
            grown = getattr(event, kind) - (getattr(before, kind) if before else 0)
            if grown > 0:
                meters.changes.add(grown, {**where, telemetry.KIND: kind})
        if self.forward is not None:
            result = self.forward(event)
            if inspect.isawaitable(result):
                await result


def _watched(progress: ProgressCallback | None) -> bool:
    """Whether someone watches the sync's progress: a callback of the caller's (telemetry's own observer
    alone is not someone a vendor call for a total is worth spending on)."""
    if isinstance(progress, _SyncObserver):
        return progress.forward is not None
    return progress is not None


async def _observed_read(connector: Connector[Any], run: Any, key: ModelName, state: _Run) -> None:
    """`_read_model` inside a ``read {model}`` span (the HTTP calls of the read are its children)."""
    observer = state.progress
    if not isinstance(observer, _SyncObserver):
        await _read_model(connector, run, key, state)
        return
    with telemetry.read_span(connector.slug, key) as span:
        await _read_model(connector, run, key, state)
        last = observer.last.get(key)
        if last is not None:
            span.set_attributes({
                "lmsconnect.model.status": last.status,
                **{f"lmsconnect.model.{n}": getattr(last, n) for n in (*_KINDS, "read", "unchanged")},
                "lmsconnect.model.held_deletions": last.held_deletions,
            })
        report = state.reports.get(key)
        if report is not None and report.status == "failed":
            telemetry.fail(span, report.error_code or "READ.FAILED")


def _observed_sync(run_sync: Callable[_P, Awaitable[SyncReport]]) -> Callable[_P, Awaitable[SyncReport]]:
    """`sync` inside a ``sync {slug}`` span whose attributes summarise its report."""

    @functools.wraps(run_sync)
    async def observed(*args: _P.args, **kwargs: _P.kwargs) -> SyncReport:
        if not telemetry.ENABLED:
            return await run_sync(*args, **kwargs)
        connector: Any = args[0] if args else kwargs["connector"]
        forward: Any = kwargs.get("progress")
        kwargs["progress"] = _SyncObserver(connector.slug, forward)
        with telemetry.sync_span(connector.slug) as span:
            report = await run_sync(*args, **kwargs)
            span.set_attributes({
                "lmsconnect.sync.connection": report.connection,
                "lmsconnect.sync.run_id": report.run_id,
                "lmsconnect.sync.resumed": report.resumed,
                "lmsconnect.sync.ok": report.ok,
                "lmsconnect.sync.calls": report.calls,
                "lmsconnect.sync.models": list(report.models),
                "lmsconnect.sync.failed": list(report.failed),
                **{f"lmsconnect.sync.{k}": v for k, v in report.totals.items()},
            })
            if not report.ok:
                codes = report.error_codes
                telemetry.fail(span, next((c for c in codes.values() if c), "SYNC.PARTIAL"))
            return report

    return observed


@_observed_sync
async def sync(
    connector: Connector[Any],
    store: StateStore,
    *,
    models: Iterable[ModelName | type[Record]] | None = None,
    progress: ProgressCallback | None = None,
    connection: str | None = None,
    batch_size: int = 500,
    progress_every: float = 1.0,
    wait: float = 0.0,
    lease_s: float = 60.0,
    deletion_guard: DeletionGuard | None = DeletionGuard(),  # noqa: B008 - frozen, never mutated
    confirm_deletions: bool | Iterable[ModelName | type[Record]] = False,
) -> SyncReport:
    """Read every model `connector` supports into `store` and record what changed.

    >>> async with lmsconnect.open_store("lms.sqlite") as store:
    ...     report = await lmsconnect.sync(lms, store, progress=print)
    ...     report.models["users"].updated
    3

    ``models`` restricts the run (classes or keys; `NotSupported` for one the table lacks); without it,
    every supported model is read except those the table marks as read on request (``by_default``
    False: they cost extra calls, e.g. a course's content), which are read when named here.
    ``connection`` names the connection in the store (default: `connection_key`). A second sync of the
    same connection waits up to ``wait`` seconds for the first, then raises `SyncInProgress`. The
    connector is opened (and closed again) if it is not open yet.

    ``progress`` is called with a `SyncProgress` after every batch of ``batch_size`` records, at least
    every ``progress_every`` seconds while a model's read goes on (records, calls, a rate-budget wait),
    when a wait starts, and once when the model ends.

    The mass-deletion guard: when a complete read would mark more of a model's stored records deleted
    than ``deletion_guard`` allows (default: more than 10 % and more than 10 records), none of that
    model's records is marked deleted and its report says ``SYNC.DELETIONS_HELD``. ``confirm_deletions``
    accepts them: ``True`` for every model, or the models (classes or keys) an operator checked.
    ``deletion_guard=None`` turns the guard off.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    if not progress_every > 0:
        raise ValueError("progress_every must be > 0 (seconds)")
    keys = _model_keys(connector, models)
    if confirm_deletions is True or deletion_guard is None:
        confirmed = set(keys)
    elif confirm_deletions is False:
        confirmed = set()
    else:
        confirmed = set(_model_keys(connector, confirm_deletions))
    guards = {k: None if k in confirmed else deletion_guard for k in keys}
    key = connection or connection_key(connector)
    owner = uuid.uuid4().hex
    started = time.monotonic()
    opened_here = False
    try:
        connector.http  # noqa: B018 - raises when not open
    except ConfigurationError:
        await connector.open()
        opened_here = True
    try:
        calls_before = connector.stats.calls
        await _acquire(store, key, owner, wait=wait, lease_s=lease_s)
        try:
            run = await store.begin_run(key, slug=connector.slug, owner=owner)
            state = _Run(store, owner, batch_size, progress, guards, progress_every)
            todo = [k for k in keys if k not in run.complete_models]
            for k in keys:
                if k in run.complete_models:
                    state.reports[k] = ModelReport(model=k, status="skipped")
                    await state.tell(SyncProgress(model=k, status="skipped"))

            async def heartbeat() -> None:
                while True:
                    await anyio.sleep(lease_s / 3)
                    if not await store.renew_lock(key, owner, lease_s=lease_s):
                        raise StoreError(f"the sync lock of {key!r} was lost while the run went on")

            remove_listener = connector.http.add_wait_listener(_wait_reporter(state))
            try:
                async with anyio.create_task_group() as outer:
                    outer.start_soon(heartbeat)
                    if _watched(progress):
                        outer.start_soon(state.tick)
                    async with anyio.create_task_group() as readers:
                        # One model first, until its first page: rejected credentials are then one
                        # failed call, and the other models are not tried with them.
                        for i, k in enumerate(todo):
                            if i == 1:
                                await state.tried.wait()
                            if state.rejected is not None:
                                break
                            readers.start_soon(_observed_read, connector, run, k, state)
                    outer.cancel_scope.cancel()
            except Exception as exc:
                # Task groups wrap errors in exception groups; a caller catching StoreError (a lost
                # lock) or its own progress callback's error should get that error itself.
                leaf = _single(exc)
                if leaf is exc:
                    raise
                raise leaf from None
            finally:
                remove_listener()
            if state.rejected is not None:
                rejected = state.rejected
                for k in todo:
                    if k not in state.reports:
                        state.reports[k] = ModelReport(
                            model=k,
                            status="not_run",
                            error=f"not run: {type(rejected).__name__}: {rejected}",
                            error_code=rejected.code,
                        )
                        await state.tell(
                            SyncProgress(model=k, status="not_run", error_code=rejected.code)
                        )
            done = all(r.status not in _NOT_DONE for r in state.reports.values())
            status = "complete" if done else "partial"
            await store.finish_run(run, status=status, owner=owner)
            counts = await store.run_counts(run.run_id)
        finally:
            with anyio.CancelScope(shield=True):
                await store.release_lock(key, owner)
        reports: dict[str, ModelReport] = {}
        for k in keys:
            got = counts.get(k, {})
            reports[k] = attrs.evolve(
                state.reports[k],
                created=got.get("created", 0),
                updated=got.get("updated", 0),
                deleted=got.get("deleted", 0),
                held_deletions=got.get("held", 0),
            )
        return SyncReport(
            connection=key,
            run_id=run.run_id,
            resumed=run.resumed,
            models=reports,
            calls=connector.stats.calls - calls_before,
            duration_s=time.monotonic() - started,
            store_writes=state.writes,
            store_s=state.store_s,
            stopped=state.rejected,
        )
    finally:
        if opened_here:
            with anyio.CancelScope(shield=True):
                await connector.aclose()


# -- CLI ---------------------------------------------------------------------------------------------


def _duration(seconds: float) -> str:
    """``8 s``, ``3 min 20 s``, ``2 h 05 min``: how long, at the precision a person reads."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class _ProgressDisplay:
    """Per-model progress. On a terminal: redrawn in place. Otherwise (a pipe, a file, a log): a line when a
    model ends or starts waiting for its rate budget, and every ``every`` seconds one line per model still
    reading, so a log shows the sync going on."""

    def __init__(self, out: TextIO, models: Sequence[str], *, live: bool, every: float = 10.0) -> None:
        self.out = out
        self.live = live
        self.every = every
        self.lines: dict[str, SyncProgress] = {
            m: SyncProgress(model=m, status="reading")  # type: ignore[arg-type]
            for m in models
        }
        self.heard: set[str] = set()
        self.drawn = 0
        self.started = self.last_draw = self.last_line = time.monotonic()
        self.width = max((len(m) for m in models), default=5)

    def __call__(self, event: SyncProgress) -> None:
        before = self.lines.get(event.model)
        self.lines[event.model] = event
        self.heard.add(event.model)
        now = time.monotonic()
        if self.live:
            if event.status != "reading" or event.waiting_until is not None or now - self.last_draw > 0.1:
                self.last_draw = now
                self.draw()
            return
        if event.error_code in _STOP_CODES:
            return  # the connection itself failed: said once, by the summary or as the CLI's error
        new_wait = event.waiting_until is not None and (before is None or before.waiting_until is None
                                                         or event.waiting_until > before.waiting_until)
        if event.status != "reading" or new_wait:
            self.write(self.text(event))
        if now - self.last_line >= self.every:
            self.last_line = now
            reading = [p for m, p in self.lines.items() if m in self.heard and p.status == "reading"]
            for p in reading:
                self.write(f"[{_duration(now - self.started)}] " + self.text(p))

    def write(self, line: str) -> None:
        self.out.write(line + "\n")
        self.out.flush()

    def text(self, p: SyncProgress) -> str:
        read = f"{p.read:>8,} read" if p.total is None else f"{p.read:>8,} of {p.total:,} read"
        if p.total is None and p.pages_total is not None:
            read += f", page {p.pages_done or 0:,} of {p.pages_total:,}"
        fraction = p.fraction
        if fraction is not None and p.status == "reading":
            read += f" ({fraction:.0%})"
        text = (
            f"{p.model:<{self.width}}  {p.status:<8}  {read}  +{p.created:,} created  "
            f"~{p.updated:,} updated  -{p.deleted:,} deleted  {p.calls:,} call{'' if p.calls == 1 else 's'}"
        )
        if p.rate is not None and p.read:
            text += f"  {p.rate:,.0f} records/s"
        if p.status != "reading" and p.elapsed_s:
            text += f"  in {_duration(p.elapsed_s)}"
        if p.held_deletions:
            text += f"  {p.held_deletions:,} deletions held ({DELETIONS_HELD})"
        if p.error:
            text += f"  ({p.error})"
        if p.waiting_until is not None and p.status == "reading":
            text += f"  waiting for rate budget until {p.waiting_until.astimezone():%H:%M:%S}"
        elif p.eta_s is not None:
            text += f"  ETA {_duration(p.eta_s)}"
        return text

    def draw(self) -> None:
        if self.drawn:
            self.out.write(f"\x1b[{self.drawn}F")
        for p in self.lines.values():
            self.out.write("\x1b[2K" + self.text(p) + "\n")
        calls = sum(p.calls for p in self.lines.values())
        self.out.write(f"\x1b[2K{calls:,} HTTP calls, {_duration(time.monotonic() - self.started)}\n")
        self.drawn = len(self.lines) + 1
        self.out.flush()


def _isatty(out: TextIO) -> bool:
    try:
        return out.isatty()
    except (AttributeError, ValueError):
        return False


async def cli_sync(
    slug: str,
    config: Mapping[str, Any],
    db: str,
    *,
    out: TextIO = sys.stdout,
    progress: bool = True,
    connection: str | None = None,
    models: Sequence[str] | None = None,
    as_json: bool = False,
    confirm_deletions: bool | Sequence[str] = False,
    progress_every: float = 10.0,
) -> int:
    """``lmsconnect sync SLUG --config-json JSON --db PATH|URL``: progress per model, then a summary.

    On a terminal the progress is redrawn in place; otherwise a line is written when a model ends or
    starts waiting for its rate budget, and every ``progress_every`` seconds for each model still reading.

    Exit codes: 0 every model synced; 1 some model's read failed (the others are recorded, nothing of
    the failed one was marked deleted); 3 every read completed but the mass-deletion guard held some
    model's deletions (``SYNC.DELETIONS_HELD``; rerun with ``--confirm-deletions MODEL`` to accept them).
    When the sync cannot run (configuration, lock, store; the credentials rejected or the host unknown
    before any model was read: `SyncReport.stopped`) the `LMSConnectError` is raised, for the CLI to say
    it once on stderr with exit code 2.
    """
    from ._api import connect

    lms = connect(slug, **dict(config))
    keys = _model_keys(lms, models)  # type: ignore[arg-type]
    if not isinstance(confirm_deletions, bool):
        _model_keys(lms, confirm_deletions)  # type: ignore[arg-type]  # refused before any call
    shown = progress and not as_json
    display = _ProgressDisplay(out, keys, live=shown and _isatty(out), every=progress_every)
    async with open_store(db) as store:
        report = await sync(
            lms,
            store,
            models=keys,
            connection=connection,
            progress=display if shown else None,
            progress_every=min(1.0, progress_every),
            confirm_deletions=confirm_deletions,  # type: ignore[arg-type]
        )
    if report.stopped is not None and not any(m.status == "complete" for m in report.models.values()):
        raise report.stopped  # the connection itself failed: said once (exit 2), not once per model
    if as_json:
        out.write(json.dumps(report.to_dict()) + "\n")
    else:
        out.write("\n" + report.summary_table())
    if not report.ok:
        return 1
    return 3 if report.held else 0


async def cli_changes(
    db: str,
    since: int = 0,
    as_json: bool = False,
    out: TextIO = sys.stdout,
    *,
    connection: str | None = None,
    limit: int | None = None,
) -> int:
    """``lmsconnect changes --db PATH|URL [--since CURSOR] [--json]``: the change log after a cursor.

    ``--json`` writes one JSON object per line (JSON Lines, streamable); the text form ends with the
    cursor to pass as ``--since`` next time. `StoreError` (exit code 2 from the CLI) when the database
    does not exist.
    """
    if db != ":memory:" and not is_postgres_url(db) and not await anyio.Path(db).exists():
        raise StoreError(
            f"no store at {db!r}",
            hint="Run `lmsconnect sync SLUG ... --db PATH` first, or give the --db that sync wrote",
        )
    count = 0
    last = since
    async with open_store(db) as store:
        async for change in store.changes(since=since, connection=connection, limit=limit):
            count += 1
            last = change.cursor
            if as_json:
                out.write(json.dumps(change.to_dict()) + "\n")
            else:
                if count == 1:
                    out.write(f"{'cursor':>7}  {'at':<20}  {'kind':<7}  {'model':<19}  id\n")
                at = change.at.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
                out.write(
                    f"{change.cursor:>7}  {at:<20}  {change.kind.value:<7}  {change.model:<19}  "
                    f"{change.id} (remote {change.remote_id}, {change.connection})\n"
                )
    if not as_json:
        out.write(f"{count} change(s); next time: --since {last}\n")
    return 0
