"""Syncs and actions as procrastinate jobs over PostgreSQL, with rate budgets shared across processes.

A service with one LMS connection per customer wires this into its processes (``lmsconnect[workers]``):

>>> async def resolve(key: str) -> tuple[str, dict[str, object]]:
...     return "talentlms", {"domain": f"{key}.talentlms.com", "api_key": secrets[key]}
>>> workers = lmsconnect.workers.Workers("postgresql://lms@db/app", resolve=resolve)
>>> async with workers:                                   # web process: defer
...     await workers.schedule("acme", every=dt.timedelta(hours=6))
...     job = await workers.defer_action("enroll_user", "acme", user_id=u, course_revision_id=c)
...     outcome = await workers.action_outcome(job, wait_s=30)
>>> await workers.run_worker(concurrency=20)             # worker process: run

What runs where:

- ``lmsconnect.sync_connection(connection_key)``: `lmsconnect.sync` of one connection into the PostgreSQL
  state store. Deferred with procrastinate ``lock`` = ``queueing_lock`` = the key: one sync per connection
  runs at a time, and at most one more waits (a second deferral raises `AlreadyQueued`).
- ``lmsconnect.enroll_user`` / ``complete_course`` / ``upsert_courses`` / ``deactivate_course``: the
  action's per-item result is kept in ``action_results`` under the job id (`action_outcome`).
- ``lmsconnect.fan_out``: a procrastinate periodic task (every minute; procrastinate defers it once per
  period whatever the number of workers) that defers the sync of every connection that is due.

Failures: `RateLimited` and vendor 5xx (`RemoteError`) are retried with exponential backoff (a 429's
``retry_after`` first); configuration, authentication and permission errors are not, and mark the
connection as needing attention (the fan-out skips it until `schedule` is called again). Credentials never
leave the service: jobs carry the connection key only, and every run asks the service's `Resolver`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import inspect
import json
import logging
import random
import signal
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Literal

import attrs

from ._api import connect
from ._budget_postgres import PostgresBudgets, quoted_schema
from ._errors import (
    ActionFailed,
    AuthenticationError,
    ConfigurationError,
    LMSConnectError,
    PermissionDenied,
    RateLimited,
    RemoteError,
)
from ._http import HOST_UNRESOLVED
from ._store import StateStore, SyncInProgress, open_store
from ._store_postgres import DEFAULT_SCHEMA, _split_url, is_postgres_url
from ._sync import SyncProgress, SyncReport, sync

if TYPE_CHECKING:
    import procrastinate
    import procrastinate.job_context
    import procrastinate.jobs

__all__ = [
    "ACTIONS",
    "ActionOutcome",
    "AlreadyQueued",
    "ConnectionHealth",
    "Resolver",
    "Workers",
]

log = logging.getLogger("lmsconnect.workers")

Resolver = Callable[[str], "tuple[str, Mapping[str, Any]] | Awaitable[tuple[str, Mapping[str, Any]]]"]
ActionName = Literal["enroll_user", "complete_course", "upsert_courses", "deactivate_course"]
ACTIONS: Final[tuple[ActionName, ...]] = (
    "enroll_user",
    "complete_course",
    "upsert_courses",
    "deactivate_course",
)
SYNC_TASK: Final = "lmsconnect.sync_connection"
FAN_OUT_TASK: Final = "lmsconnect.fan_out"
#: Errors that no retry can fix: the connection needs someone's attention.
ATTENTION: Final[tuple[type[LMSConnectError], ...]] = (
    ConfigurationError,
    AuthenticationError,
    PermissionDenied,
)
_EXTRA_HINT: Final = 'Install the workers extra: pip install "lmsconnect[workers]"'
_SETUP_LOCK: Final = 0x6C6D73_776B7273  # "lms" "wkrs"

_SETUP: Final = (
    "CREATE SCHEMA IF NOT EXISTS {s}",
    """CREATE TABLE IF NOT EXISTS {s}.worker_connections (
        key text PRIMARY KEY,
        interval_s double precision,
        next_due timestamptz,
        needs_attention boolean NOT NULL DEFAULT false,
        last_outcome text,
        last_at timestamptz,
        last_error_code text,
        last_error text,
        last_counts jsonb,
        last_calls integer,
        syncs integer NOT NULL DEFAULT 0,
        done_job bigint,
        failures integer NOT NULL DEFAULT 0
    )""",
    "CREATE INDEX IF NOT EXISTS worker_connections_due ON {s}.worker_connections (next_due)",
    """CREATE TABLE IF NOT EXISTS {s}.action_results (
        job_id bigint PRIMARY KEY,
        connection text NOT NULL,
        action text NOT NULL,
        ok boolean NOT NULL,
        error_code text,
        error text,
        result jsonb,
        finished_at timestamptz NOT NULL DEFAULT now()
    )""",
)


class AlreadyQueued(LMSConnectError):
    """A sync of this connection is already waiting to run (procrastinate's queueing lock)."""

    code = "WORKERS.ALREADY_QUEUED"


class _Stopping(Exception):
    """Raised from a sync's progress callback at a batch boundary when the worker is shutting down."""


class _NeedsAttention(Exception):
    """A sync whose models failed for a reason no retry fixes (credentials, permissions): not retried."""


class _Transient(Exception):
    """A sync whose models failed for transient reasons (rate limit, vendor 5xx): retried."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@attrs.frozen(kw_only=True)
class ConnectionHealth:
    """How one connection's syncs are going (from `Workers.health` or ``lmsconnect connections``)."""

    key: str
    interval_s: float | None
    next_due: dt.datetime | None
    needs_attention: bool
    last_outcome: str | None
    last_at: dt.datetime | None
    last_error_code: str | None
    last_error: str | None
    last_counts: Mapping[str, int] | None
    last_calls: int | None
    syncs: int
    failures: int

    def to_dict(self) -> dict[str, Any]:
        out = attrs.asdict(self)
        for name in ("next_due", "last_at"):
            value = out[name]
            out[name] = value.isoformat() if value is not None else None
        return out


@attrs.frozen(kw_only=True)
class ActionOutcome:
    """What a deferred action did: ``status`` is ``pending`` (queued or running), ``succeeded`` or
    ``failed``; ``result`` is the per-item `ActionResult.to_dict` when the action ran (even when it
    failed item by item), ``error_code``/``error`` when it raised."""

    job_id: int
    status: Literal["pending", "succeeded", "failed"]
    action: str | None = None
    connection: str | None = None
    result: Mapping[str, Any] | None = None
    error_code: str | None = None
    error: str | None = None


def _codes(*classes: type[LMSConnectError]) -> frozenset[str]:
    """The error codes of `classes` and their subclasses (a model failure in a `SyncReport` has one)."""
    out: set[str] = set()
    todo = list(classes)
    while todo:
        cls = todo.pop()
        out.add(cls.code)
        todo += cls.__subclasses__()
    return frozenset(out)


#: Codes of model failures no retry fixes: the connection needs someone's attention.
_ATTENTION_CODES: Final = _codes(*ATTENTION) | {HOST_UNRESOLVED}
#: Codes of model failures a retry can fix: a 429, a vendor 5xx or unreadable reply.
_TRANSIENT_CODES: Final = _codes(RateLimited, RemoteError)


class _Retry:
    """procrastinate retry strategy: backoff for transient failures, none for the rest."""

    def __init__(self, *, max_attempts: int, base_s: float, max_s: float) -> None:
        self.max_attempts = max_attempts
        self.base_s = base_s
        self.max_s = max_s

    def delay(self, exception: BaseException, attempts: int) -> float | None:
        if attempts + 1 >= self.max_attempts:
            return None
        hinted: float | None = None
        if isinstance(exception, (RateLimited, _Transient)):
            hinted = exception.retry_after
        elif isinstance(exception, SyncInProgress):
            hinted = None  # a dead worker's store lease: taken over once it runs out
        elif isinstance(exception, RemoteError):
            if exception.status is not None and exception.status < 500:
                return None
        else:
            return None
        backoff = random.uniform(0, min(self.max_s, self.base_s * 2**attempts))
        return max(hinted or 0.0, backoff)

    def strategy(self) -> Any:
        from procrastinate import retry as pretry

        outer = self

        class Strategy(pretry.BaseRetryStrategy):
            def get_retry_decision(
                self, *, exception: BaseException, job: procrastinate.jobs.Job
            ) -> pretry.RetryDecision | None:
                delay = outer.delay(exception, job.attempts)
                if delay is None:
                    return None
                return pretry.RetryDecision(retry_in={"seconds": int(delay + 0.999)})

        return Strategy()


class Workers:
    """lmsconnect's tasks on a procrastinate app, its PostgreSQL store, and shared rate budgets.

    ``db`` is a ``postgresql://`` URL (``?schema=`` names lmsconnect's schema; procrastinate's tables
    go to the same schema); ``resolve(connection_key) -> (slug, config)`` (sync or async) is the
    service's: the only place credentials come from. Pass ``app`` to add the tasks to your own
    procrastinate app (its connections must reach the same database with lmsconnect's schema first in
    their ``search_path``: procrastinate's tables are created there); by default one is made.
    ``connect_options`` go to every `lmsconnect.connect` (e.g. ``allow_destructive=False``).
    """

    def __init__(
        self,
        db: str,
        *,
        resolve: Resolver,
        app: procrastinate.App | None = None,
        connect_options: Mapping[str, Any] | None = None,
        sync_options: Mapping[str, Any] | None = None,
        max_attempts: int = 5,
        backoff_base_s: float = 10.0,
        backoff_max_s: float = 600.0,
        fan_out_cron: str = "* * * * *",
    ) -> None:
        try:
            import procrastinate
        except ImportError:  # pragma: no cover - depends on the installation
            raise ConfigurationError(f"lmsconnect.workers needs procrastinate. {_EXTRA_HINT}") from None
        if not is_postgres_url(db):
            raise ConfigurationError("Workers needs a postgresql:// URL for its database")
        self.db = db
        conninfo, schema, _ = _split_url(db)
        self.schema = schema or DEFAULT_SCHEMA
        self._s = quoted_schema(self.schema)
        self.resolve = resolve
        self.connect_options = dict(connect_options or {})
        # wait: a sync picked up after a worker died waits for the dead one's store lease to run out.
        self.sync_options = {"wait": 90.0, **(sync_options or {})}
        if app is None:
            app = procrastinate.App(
                connector=procrastinate.PsycopgConnector(
                    conninfo=conninfo,
                    kwargs={"options": f"-c search_path={self.schema}", "prepare_threshold": None},
                )
            )
            self._own_app = True
        else:
            self._own_app = False
        self.app = app
        self.budgets = PostgresBudgets(db, schema=self.schema)
        self._store: StateStore | None = None
        self._exit = contextlib.AsyncExitStack()
        self._stopping = asyncio.Event()
        self._retry = _Retry(max_attempts=max_attempts, base_s=backoff_base_s, max_s=backoff_max_s)
        self._register(fan_out_cron)

    # -- lifecycle -----------------------------------------------------------------------------------

    async def open(self) -> None:
        """Open the store, the budgets and the app; create the tables that are missing."""
        try:
            await self._open()
        except BaseException:
            await self.aclose()
            raise

    async def _open(self) -> None:
        # The store first: it says clearly when the database cannot be reached.
        self._store = await self._exit.enter_async_context(open_store(self.db))
        await self.budgets.open()
        self._exit.push_async_callback(self.budgets.aclose)
        if self._own_app:
            await self.app.open_async()
            self._exit.push_async_callback(self.app.close_async)
        async with self._pool().connection() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SETUP_LOCK,))
            for statement in _SETUP:
                await conn.execute(statement.format(s=self._s).encode())
            cur = await conn.execute("SELECT to_regclass(%s)", (f"{self.schema}.procrastinate_jobs",))
            row = await cur.fetchone()
            exists = row is not None and row[0] is not None
        if not exists:
            # procrastinate's schema, applied once (it is not idempotent), in lmsconnect's schema.
            async with self._pool().connection() as conn, conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SETUP_LOCK,))
                await conn.execute(f"SET LOCAL search_path TO {self._s}".encode())
                cur = await conn.execute("SELECT to_regclass('procrastinate_jobs')")
                row = await cur.fetchone()
                if row is None or row[0] is None:
                    from procrastinate import schema as pschema

                    await conn.execute(pschema.SchemaManager.get_schema().encode())

    async def aclose(self) -> None:
        self._store = None
        await self._exit.aclose()  # the app, the budgets, the store

    async def __aenter__(self) -> Workers:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def _connect(self, key: str, slug: str, config: Mapping[str, Any]) -> Any:
        return connect(slug, budget=self.budgets.tenant(key), **self.connect_options, **config)

    def _pool(self) -> Any:
        return self.budgets._require()

    @property
    def store(self) -> StateStore:
        if self._store is None:
            raise ConfigurationError("Workers is not open: use `async with workers:`")
        return self._store

    # -- tasks ---------------------------------------------------------------------------------------

    def _register(self, fan_out_cron: str) -> None:
        retry = self._retry.strategy()

        @self.app.task(name=SYNC_TASK, retry=retry, pass_context=True)
        async def sync_connection(context: procrastinate.JobContext, connection_key: str) -> dict[str, Any]:
            return await self._run_sync(connection_key, job_id=context.job.id)

        self.sync_task = sync_connection

        def action_task(name: ActionName) -> Any:
            async def run(
                context: procrastinate.JobContext, connection_key: str, payload: dict[str, Any]
            ) -> dict[str, Any]:
                assert context.job.id is not None
                return await self._run_action(name, connection_key, payload, job_id=context.job.id)

            return self.app.task(name=f"lmsconnect.{name}", retry=retry, pass_context=True)(run)

        self.action_tasks = {name: action_task(name) for name in ACTIONS}

        @self.app.periodic(cron=fan_out_cron, periodic_id="lmsconnect")
        @self.app.task(name=FAN_OUT_TASK, queueing_lock=FAN_OUT_TASK)
        async def fan_out(timestamp: int) -> int:
            await self.recover_stalled()
            return await self.fan_out()

        self.fan_out_task = fan_out

    async def _config(self, key: str) -> tuple[str, Mapping[str, Any]]:
        got = self.resolve(key)
        if inspect.isawaitable(got):
            got = await got
        slug, config = got
        return slug, config

    async def _run_sync(self, key: str, *, job_id: int | None) -> dict[str, Any]:
        async def stop_at_batch(_: SyncProgress) -> None:
            if self._stopping.is_set():
                raise _Stopping(key)

        if job_id is not None and await self._done(key, job_id):
            # A worker finished this sync and died before procrastinate marked the job done; the job was
            # recovered as stalled. Once per schedule: not again.
            return {"connection": key, "already_done": True}
        try:
            slug, config = await self._config(key)
            async with self._connect(key, slug, config) as lms:
                report = await sync(
                    lms, self.store, connection=key, progress=stop_at_batch, **self.sync_options
                )
        except _Stopping:
            # The run stays open in the store; the next sync of this key resumes it. Deferred now, it
            # waits for this job's lock and runs on whichever worker is still up.
            await self._defer_resume(key)
            await self._record(key, outcome="interrupted")
            log.info("sync of %s stopped at a batch boundary for shutdown; resumes in a new job", key)
            return {"connection": key, "interrupted": True}
        except ATTENTION as exc:
            await self._record(key, outcome="needs_attention", error=exc)
            raise
        except (RateLimited, RemoteError) as exc:
            await self._record(key, outcome="retrying", error=exc)
            raise
        await self._record_report(key, report, job_id)
        return {"connection": key, "ok": report.ok, "totals": report.totals, "calls": report.calls}

    async def _done(self, key: str, job_id: int) -> bool:
        async with self._pool().connection() as conn:
            cur = await conn.execute(
                f"SELECT done_job FROM {self._s}.worker_connections WHERE key = %s".encode(), (key,)
            )
            row = await cur.fetchone()
        return row is not None and row[0] == job_id

    async def _record_report(self, key: str, report: SyncReport, job_id: int | None) -> None:
        codes = report.error_codes
        if not codes:
            await self._record(key, outcome="ok", report=report, job_id=job_id)
            return
        first = report.models[next(iter(codes))].error
        attention = [(m, c) for m, c in codes.items() if c in _ATTENTION_CODES]
        if attention:
            model, code = attention[0]
            message = report.models[model].error
            await self._record(key, outcome="needs_attention", report=report, code=code, message=message)
            raise _NeedsAttention(f"sync of {key} needs attention: {message}")
        known = [c for c in codes.values() if c]
        await self._record(
            key, outcome="partial", report=report, code=known[0] if known else None, message=first
        )
        if all(c in _TRANSIENT_CODES for c in codes.values()):
            hints = [r.retry_after for r in report.models.values() if r.retry_after is not None]
            raise _Transient(f"sync of {key} was partial: {first}", retry_after=max(hints, default=None))

    async def _record(
        self,
        key: str,
        *,
        outcome: str,
        report: SyncReport | None = None,
        error: LMSConnectError | None = None,
        code: str | None = None,
        message: str | None = None,
        job_id: int | None = None,
    ) -> None:
        if error is not None:
            code, message = error.code, str(error)
        attention = outcome == "needs_attention"
        counted = outcome not in ("interrupted", "retrying")
        async with self._pool().connection() as conn:
            await conn.execute(
                f"""INSERT INTO {self._s}.worker_connections AS c
                    (key, needs_attention, last_outcome, last_at, last_error_code, last_error, last_counts,
                     last_calls, syncs, failures, next_due, done_job)
                VALUES (%(key)s, %(attention)s, %(outcome)s, now(), %(code)s, %(message)s, %(counts)s,
                        %(calls)s, %(synced)s, %(failed)s, NULL, %(job)s)
                ON CONFLICT (key) DO UPDATE SET
                    needs_attention = %(attention)s, last_outcome = %(outcome)s, last_at = now(),
                    last_error_code = %(code)s, last_error = %(message)s,
                    last_counts = coalesce(%(counts)s, c.last_counts),
                    last_calls = coalesce(%(calls)s, c.last_calls),
                    syncs = c.syncs + %(synced)s, failures = c.failures + %(failed)s,
                    done_job = coalesce(%(job)s, c.done_job),
                    next_due = CASE WHEN %(counted)s AND c.interval_s IS NOT NULL
                        THEN now() + make_interval(secs => c.interval_s) ELSE c.next_due END
                """.encode(),
                {
                    "key": key,
                    "attention": attention,
                    "outcome": outcome,
                    "code": code,
                    "message": message[:500] if message else None,
                    "counts": json.dumps(report.totals) if report is not None else None,
                    "calls": report.calls if report is not None else None,
                    "synced": 1 if outcome in ("ok", "partial") else 0,
                    "failed": 1 if outcome in ("needs_attention", "partial") else 0,
                    "counted": counted,
                    "job": job_id,
                },
            )

    async def _run_action(
        self, name: ActionName, key: str, payload: dict[str, Any], *, job_id: int
    ) -> dict[str, Any]:
        result: dict[str, Any] | None = None
        failure: LMSConnectError | None = None
        async with self._pool().connection() as conn:
            cur = await conn.execute(
                f"SELECT ok FROM {self._s}.action_results WHERE job_id = %s".encode(), (job_id,)
            )
            done = await cur.fetchone()
        if done is not None:
            # Recovered after its worker died between recording the result and finishing the job: the
            # action was applied once; not again. (A worker dying between the vendor's answer and this
            # record runs the action again: upserts and enrolments are idempotent, see docs/scale.md.)
            return {"ok": bool(done[0]), "already_done": True}
        try:
            slug, config = await self._config(key)
            async with self._connect(key, slug, config) as lms:
                outcome = await getattr(lms, name)(payload)
                result = outcome.to_dict()
        except ActionFailed as exc:
            result, failure = exc.result.to_dict(), exc
        except RateLimited:
            raise  # refused, nothing applied: retried by the strategy
        except LMSConnectError as exc:
            failure = exc
            if isinstance(exc, ATTENTION):
                await self._record(key, outcome="needs_attention", error=exc)
        async with self._pool().connection() as conn:
            await conn.execute(
                f"""INSERT INTO {self._s}.action_results
                    (job_id, connection, action, ok, error_code, error, result)
                VALUES (%s, %s, %s, %s, %s, %s, %s)
                ON CONFLICT (job_id) DO UPDATE SET ok = excluded.ok, error_code = excluded.error_code,
                    error = excluded.error, result = excluded.result, finished_at = now()""".encode(),
                (
                    job_id,
                    key,
                    name,
                    failure is None and bool(result and result.get("ok")),
                    failure.code if failure else None,
                    str(failure)[:1000] if failure else None,
                    json.dumps(result) if result is not None else None,
                ),
            )
        return {"ok": failure is None}

    # -- the service's side --------------------------------------------------------------------------

    async def defer_sync(self, key: str) -> int:
        """Queue a sync of `key` now; raises `AlreadyQueued` when one is already waiting."""
        from procrastinate import exceptions as pexc

        try:
            job_id: int = await self.sync_task.configure(lock=key, queueing_lock=key).defer_async(
                connection_key=key
            )
        except pexc.AlreadyEnqueued:
            raise AlreadyQueued(f"a sync of {key!r} is already queued") from None
        return job_id

    async def _defer_resume(self, key: str) -> None:
        with contextlib.suppress(AlreadyQueued):  # one waiting already resumes the run
            await self.defer_sync(key)

    async def defer_action(self, action: ActionName, key: str, payload: Any = None, **fields: Any) -> int:
        """Queue an action for connection `key`; returns the job id for `action_outcome`.

        The payload is what the connector's action method takes (a mapping or keyword fields); it is
        stored as JSON in the job, so keep secrets out of it.
        """
        if action not in ACTIONS:
            raise ConfigurationError(f"unknown action {action!r}; one of {', '.join(ACTIONS)}")
        data = dict(payload or {}, **fields)
        json.dumps(data)  # fail here, in the web process, on what cannot be queued
        job_id: int = await self.action_tasks[action].defer_async(connection_key=key, payload=data)
        return job_id

    async def action_outcome(
        self, job_id: int, *, wait_s: float = 0.0, poll_s: float = 0.25
    ) -> ActionOutcome:
        """The outcome of a deferred action; waits up to `wait_s` seconds while it is pending."""
        deadline = asyncio.get_running_loop().time() + wait_s
        while True:
            async with self._pool().connection() as conn:
                cur = await conn.execute(
                    f"""SELECT action, connection, ok, error_code, error, result
                    FROM {self._s}.action_results WHERE job_id = %s""".encode(),
                    (job_id,),
                )
                row = await cur.fetchone()
                if row is None:
                    cur = await conn.execute(
                        f"SELECT status::text FROM {self._s}.procrastinate_jobs WHERE id = %s".encode(),
                        (job_id,),
                    )
                    job = await cur.fetchone()
            if row is not None:
                action, connection, ok, code, error, result = row
                return ActionOutcome(
                    job_id=job_id,
                    status="succeeded" if ok else "failed",
                    action=action,
                    connection=connection,
                    result=result,
                    error_code=code,
                    error=error,
                )
            if job is None:
                raise ConfigurationError(f"no action job {job_id}")
            if job[0] in ("failed", "cancelled", "aborted"):
                return ActionOutcome(job_id=job_id, status="failed", error=f"the job ended {job[0]}")
            if asyncio.get_running_loop().time() >= deadline:
                return ActionOutcome(job_id=job_id, status="pending")
            await asyncio.sleep(poll_s)

    async def schedule(
        self, key: str, *, every: dt.timedelta | float, first: dt.datetime | None = None
    ) -> None:
        """Sync `key` every `every` (a timedelta or seconds), first at `first` (default: now).

        Also clears "needs attention" (call it again once the credentials are fixed).
        """
        seconds = every.total_seconds() if isinstance(every, dt.timedelta) else float(every)
        if seconds <= 0:
            raise ConfigurationError("a schedule needs a positive interval")
        async with self._pool().connection() as conn:
            await conn.execute(
                f"""INSERT INTO {self._s}.worker_connections AS c (key, interval_s, next_due)
                VALUES (%s, %s, coalesce(%s, now()))
                ON CONFLICT (key) DO UPDATE SET interval_s = excluded.interval_s,
                    next_due = excluded.next_due, needs_attention = false""".encode(),
                (key, seconds, first),
            )

    async def unschedule(self, key: str) -> None:
        """Stop scheduling `key` (its health stays readable)."""
        async with self._pool().connection() as conn:
            await conn.execute(
                f"""UPDATE {self._s}.worker_connections SET interval_s = NULL, next_due = NULL
                WHERE key = %s""".encode(),
                (key,),
            )

    async def recover_stalled(self, *, heartbeat_s: float = 30.0) -> int:
        """Queue again the jobs of workers that stopped sending heartbeats (killed, host lost); returns
        how many. Called by the periodic fan-out. A recovered sync resumes its run from the store."""
        recovered = 0
        for name in (SYNC_TASK, *(f"lmsconnect.{a}" for a in ACTIONS)):
            for job in await self.app.job_manager.get_stalled_jobs(
                task_name=name, seconds_since_heartbeat=heartbeat_s
            ):
                await self.app.job_manager.retry_job(job)
                recovered += 1
        if recovered:
            log.warning("re-queued %d job(s) of workers that stopped", recovered)
        return recovered

    async def fan_out(self, *, limit: int = 10_000) -> int:
        """Defer the sync of every scheduled connection that is due (and not needing attention); move its
        next due time one interval on. Returns how many were deferred. Run every minute by the periodic
        task; safe to call from any number of processes at once (rows are claimed with SKIP LOCKED)."""
        async with self._pool().connection() as conn, conn.transaction():
            cur = await conn.execute(
                f"""UPDATE {self._s}.worker_connections c
                SET next_due = now() + make_interval(secs => c.interval_s)
                WHERE key IN (
                    SELECT key FROM {self._s}.worker_connections
                    WHERE next_due <= now() AND interval_s IS NOT NULL AND NOT needs_attention
                    ORDER BY next_due LIMIT %s FOR UPDATE SKIP LOCKED
                ) RETURNING key""".encode(),
                (limit,),
            )
            keys = [r[0] for r in await cur.fetchall()]
        deferred = 0
        for key in keys:
            with contextlib.suppress(AlreadyQueued):  # still waiting from last time: nothing piles up
                await self.defer_sync(key)
                deferred += 1
        return deferred

    async def health(self, key: str | None = None) -> list[ConnectionHealth]:
        """Every known connection's health (or one's), sorted by key."""
        return await connection_health(self._pool(), self._s, key)

    # -- running -------------------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask running syncs to stop at their next batch boundary (and resume in a new job)."""
        self._stopping.set()

    async def run_worker(self, *, concurrency: int = 10, wait: bool = True, **options: Any) -> None:
        """Run a procrastinate worker with `concurrency` jobs at a time until SIGTERM/SIGINT (or, with
        ``wait=False``, until the queue is empty). On a signal, running syncs stop at a batch boundary and
        are deferred again (another worker resumes the run from the store); actions finish."""
        self._stopping.clear()
        loop = asyncio.get_running_loop()
        task = asyncio.ensure_future(
            self.app.run_worker_async(
                concurrency=concurrency, wait=wait, install_signal_handlers=False, **options
            )
        )

        def on_signal() -> None:
            log.info("stopping: running syncs stop at their next batch")
            self.stop()
            task.cancel()

        installed = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, on_signal)
                installed.append(sig)
        try:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)


async def connection_health(pool: Any, quoted: str, key: str | None = None) -> list[ConnectionHealth]:
    fields = [f.name for f in attrs.fields(ConnectionHealth)]
    where = "WHERE key = %s" if key is not None else ""
    async with pool.connection() as conn:
        cur = await conn.execute(
            f"SELECT {', '.join(fields)} FROM {quoted}.worker_connections {where} ORDER BY key".encode(),
            (key,) if key is not None else (),
        )
        rows: Sequence[tuple[Any, ...]] = await cur.fetchall()
    return [ConnectionHealth(**dict(zip(fields, row, strict=True))) for row in rows]


# -- resolvers ---------------------------------------------------------------------------------------


def env_resolver(prefix: str = "LMSCONNECT_CONNECTION_") -> Resolver:
    """A resolver reading each connection from an environment variable (a secrets manager's usual way
    into a container): ``<prefix><KEY>`` holds ``{"slug": "talentlms", "config": {...}}`` as JSON, the
    key upper-cased with every character that is not a letter or digit as ``_``."""

    import os
    import re

    def resolve(key: str) -> tuple[str, Mapping[str, Any]]:
        name = prefix + re.sub(r"[^A-Za-z0-9]", "_", key).upper()
        raw = os.environ.get(name)
        if raw is None:
            raise ConfigurationError(f"no credentials for connection {key!r}: set ${name}")
        try:
            value = json.loads(raw)
            slug, config = value["slug"], value["config"]
        except (ValueError, KeyError, TypeError):
            # Never quote the value: it holds the secret.
            raise ConfigurationError(
                f'${name} must be JSON like {{"slug": "talentlms", "config": {{...}}}}'
            ) from None
        if not isinstance(slug, str) or not isinstance(config, dict):
            raise ConfigurationError(f"${name}: slug must be a string and config an object")
        return slug, config

    return resolve


def load_resolver(spec: str) -> Resolver:
    """``env`` (`env_resolver`) or ``package.module:function``."""
    if spec == "env":
        return env_resolver()
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ConfigurationError(f"--resolver must be 'env' or 'package.module:function', not {spec!r}")
    import importlib

    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(f"--resolver: cannot import {module_name!r} ({exc})") from None
    found = getattr(module, attr, None)
    if not callable(found):
        raise ConfigurationError(f"--resolver: {module_name} has no function {attr!r}")
    resolver: Resolver = found
    return resolver


def _no_resolver(key: str) -> tuple[str, Mapping[str, Any]]:
    raise ConfigurationError("this process only defers jobs; workers resolve credentials")


# -- CLI: worker, enqueue, schedule, connections (wired into lmsconnect._cli) ------------------------

_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_interval(text: str) -> float:
    """``90``, ``90s``, ``30m``, ``6h``, ``1d`` → seconds."""
    value = text.strip().lower()
    unit = _UNITS.get(value[-1:], None)
    number = value[:-1] if unit else value
    try:
        seconds = float(number) * (unit or 1)
    except ValueError:
        raise ConfigurationError(f"{text!r} is not an interval like 90s, 30m, 6h or 1d") from None
    if seconds <= 0:
        raise ConfigurationError(f"an interval must be positive, not {text!r}")
    return seconds


def add_cli_commands(sub: Any) -> None:
    """Add ``worker``, ``enqueue``, ``schedule`` and ``connections`` to the CLI's subparsers."""
    db_help = "the PostgreSQL URL (postgresql://user@host/db?schema=lmsconnect)"
    p = sub.add_parser(
        "worker",
        help="run a worker: syncs and actions as procrastinate jobs",
        description="Run a procrastinate worker for lmsconnect's syncs and actions until SIGTERM or Ctrl-C; "
        "a running sync stops after its next committed batch and is resumed by another worker. Needs "
        'pip install "lmsconnect[workers]".',
    )
    p.add_argument("--db", required=True, metavar="URL", help=db_help)
    p.add_argument("--concurrency", type=int, default=10, metavar="N", help="jobs run at once (default 10)")
    p.add_argument(
        "--resolver", default="env", metavar="env|MODULE:FUNCTION",
        help="where credentials come from: 'env' ($LMSCONNECT_CONNECTION_<KEY> as JSON) or "
        "package.module:function returning (slug, config)",
    )  # fmt: skip
    p = sub.add_parser(
        "enqueue",
        help="queue a job now (a worker runs it)",
        description="Queue a sync of one connection now; refused when one is already waiting.",
    )
    p.add_argument("kind", choices=["sync"], help="what to queue (sync)")
    p.add_argument("key", help="the connection key")
    p.add_argument("--db", required=True, metavar="URL", help=db_help)
    p = sub.add_parser(
        "schedule",
        help="sync a connection every INTERVAL (or --off)",
        description="Set how often the workers' periodic fan-out syncs a connection, or stop it.",
    )
    p.add_argument("key", help="the connection key")
    p.add_argument("--every", metavar="INTERVAL", help="90s, 30m, 6h, 1d")
    p.add_argument("--off", action="store_true", help="stop scheduling it")
    p.add_argument("--db", required=True, metavar="URL", help=db_help)
    p = sub.add_parser(
        "connections",
        help="health of every connection the workers know",
        description="Per connection: the last sync's outcome, time, counts and error code, and when the "
        "next one is due.",
    )
    p.add_argument("--db", required=True, metavar="URL", help=db_help)
    p.add_argument("--json", action="store_true", help="one JSON array instead of a table")


async def cli_command(args: Any, out: Any) -> int:
    if args.command == "worker":
        if args.concurrency < 1:
            raise ConfigurationError("--concurrency must be at least 1")
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
        async with Workers(args.db, resolve=load_resolver(args.resolver)) as workers:
            out.write(f"worker: {args.concurrency} jobs at a time; SIGTERM stops it gracefully\n")
            out.flush()
            await workers.run_worker(concurrency=args.concurrency)
        return 0
    async with Workers(args.db, resolve=_no_resolver) as workers:
        if args.command == "enqueue":
            try:
                job = await workers.defer_sync(args.key)
            except AlreadyQueued as exc:
                out.write(f"{exc}\n")
                return 1
            out.write(f"queued sync of {args.key}: job {job}\n")
            return 0
        if args.command == "schedule":
            if args.off:
                await workers.unschedule(args.key)
                out.write(f"{args.key}: no longer scheduled\n")
                return 0
            if not args.every:
                raise ConfigurationError("give --every INTERVAL (e.g. 6h) or --off")
            seconds = parse_interval(args.every)
            await workers.schedule(args.key, every=seconds)
            out.write(f"{args.key}: synced every {args.every} (first: now)\n")
            return 0
        health = await workers.health()
    if args.json:
        out.write(json.dumps([h.to_dict() for h in health], indent=2) + "\n")
        return 0
    from ._cli import table

    def when(value: dt.datetime | None) -> str:
        return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ") if value else "-"

    rows = [
        [
            h.key,
            ("NEEDS ATTENTION " if h.needs_attention else "") + (h.last_outcome or "never synced"),
            when(h.last_at),
            " ".join(f"{k}={v}" for k, v in (h.last_counts or {}).items()) or "-",
            h.last_error_code or "-",
            when(h.next_due),
            f"{h.syncs}/{h.failures}",
        ]
        for h in health
    ]
    header = ["connection", "last outcome", "at", "changes", "error", "next due", "syncs/failed"]
    out.write(table(rows, header) + "\n")
    return 0
