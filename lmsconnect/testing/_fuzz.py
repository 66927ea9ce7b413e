"""`fuzz_connector`: run a connector's public API through a `HostileProxy` and count what went wrong.

>>> report = await lmsconnect.testing.fuzz_connector("moodle", seeds=[1, 2, 3])
>>> print(report.summary())
>>> assert report.clean, report.summary()

One run, per connector:

1. start the connector's simulator, a `WitnessServer` and a `HostileProxy` in front of the simulator, all
   on 127.0.0.1, and connect through the proxy;
2. clean pass (the proxy forwards untouched): read every supported model (the inputs of the actions come
   from it) and sync into a fresh SQLite store — this is the truth nothing upstream will change;
3. per seed, hostile pass (about a third of the answers mutated): a sync, ``list()`` of every supported
   model, ``check()``, the passthrough calls (and one absolute URL on the witness), the supported actions
   with valid inputs, and a second sync. Each operation runs under a timeout.

It counts operations, `LMSConnectError`s by code, and failures: any other exception (by type, the
innermost frame in lmsconnect code and the operation, with one reproducing seed and the mutations the
operation met), a hang (the timeout passed), a ``deleted`` change recorded by a hostile sync (nothing was
deleted upstream, so every one is spurious), a request that carried a credential to the witness, and
``check()`` raising (it reports remote failures per item, never raises them).
"""

from __future__ import annotations

import collections
import functools
import os
import tempfile
import traceback
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import anyio
import attrs

from .._api import connect
from .._connector import Connector
from .._errors import LMSConnectError
from .._http import HttpOptions
from .._models import MODELS, Record
from .._secrets import Secret
from .._store import open_store
from .._sync import SyncReport, _single, sync
from ._hostile import AppliedMutation, HostileProxy, WitnessServer

__all__ = ["Failure", "FuzzReport", "fuzz_connector"]

_ROOT: Final = Path(__file__).resolve().parents[2]
_HERE: Final = frozenset({Path(__file__).resolve(), Path(__file__).resolve().with_name("_hostile.py")})
#: Transport settings of a fuzz run: short backoffs and timeouts, so that a run measures robustness,
#: not patience (retries still happen, as in production, just sooner).
FUZZ_HTTP: Final = HttpOptions(
    timeout_s=10.0, connect_timeout_s=5.0, max_attempts=3, backoff_base_s=0.01, backoff_max_s=0.05,
    max_retry_wait_s=1.0,
)  # fmt: skip


@attrs.define(kw_only=True)
class Failure:
    """One distinct failure: what (``kind``/``type``), where (``location``), during which ``operation``;
    how often, and one way to reproduce it (``seed`` and the ``mutations`` that operation met)."""

    kind: str  # "exception", "hang", "spurious_deletion", "leak", "check_raised" ("held_deletion")
    operation: str
    type: str
    location: str
    count: int = 0
    seed: int | None = None
    mutations: tuple[str, ...] = ()
    message: str = ""

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.kind, self.type, self.location, self.operation)


@attrs.define(kw_only=True)
class FuzzReport:
    """What a fuzz run of one connector found (see the module docstring)."""

    connector: str
    seeds: tuple[int, ...] = ()
    operations: int = 0
    errors_by_code: collections.Counter[str] = attrs.field(factory=collections.Counter)
    #: LMSConnectError codes per operation, e.g. ``{"enroll_user: REMOTE.INVALID_RESPONSE": 2}``.
    errors_by_operation: collections.Counter[str] = attrs.field(factory=collections.Counter)
    failures: dict[tuple[str, str, str, str], Failure] = attrs.field(factory=dict)
    #: Not failures: deletions a store's mass-deletion guard held back (a model report's
    #: ``held_deletions``). Each is a hostile answer that passed as a complete read — a validation gap
    #: the guard happened to cover; counted per (model, operation) like failures.
    held: dict[tuple[str, str, str, str], Failure] = attrs.field(factory=dict)
    mutations: collections.Counter[str] = attrs.field(factory=collections.Counter)
    proxied_requests: int = 0
    witness_requests: int = 0
    clean_records: dict[str, int] = attrs.field(factory=dict)
    #: Every mutation the proxy applied, in order, with the operation it happened in (``op | mutation``).
    applied: list[str] = attrs.field(factory=list, repr=False)

    def _count(self, kind: str) -> int:
        return sum(f.count for f in self.failures.values() if f.kind == kind)

    @property
    def non_lmsconnect_errors(self) -> int:
        """Exceptions other than `LMSConnectError` that left an operation (or failed a synced model)."""
        return self._count("exception")

    @property
    def hangs(self) -> int:
        return self._count("hang")

    @property
    def spurious_deletions(self) -> int:
        return self._count("spurious_deletion")

    @property
    def leaks(self) -> int:
        """Requests that reached the witness server carrying a credential."""
        return self._count("leak")

    @property
    def check_raised(self) -> int:
        """Times ``check()`` raised (even an LMSConnectError): it reports remote failures per item instead."""
        return self._count("check_raised")

    @property
    def clean(self) -> bool:
        return not self.failures

    def add(self, failure: Failure, count: int = 1) -> None:
        known = self.failures.setdefault(failure.key, failure)
        known.count += count

    def to_dict(self) -> dict[str, Any]:
        return {
            "connector": self.connector,
            "seeds": list(self.seeds),
            "operations": self.operations,
            "non_lmsconnect_errors": self.non_lmsconnect_errors,
            "hangs": self.hangs,
            "spurious_deletions": self.spurious_deletions,
            "leaks": self.leaks,
            "check_raised": self.check_raised,
            "witness_requests": self.witness_requests,
            "proxied_requests": self.proxied_requests,
            "errors_by_code": dict(sorted(self.errors_by_code.items())),
            "errors_by_operation": dict(sorted(self.errors_by_operation.items())),
            "mutations": dict(sorted(self.mutations.items())),
            "failures": [attrs.asdict(f) for f in self.sorted_failures()],
            "held_deletions": sum(f.count for f in self.held.values()),
        }

    def sorted_failures(self) -> list[Failure]:
        return sorted(self.failures.values(), key=lambda f: (f.kind, -f.count, f.location, f.operation))

    def summary(self) -> str:
        """Counts, then one line per distinct failure with a reproducing seed."""
        lines = [
            f"{self.connector}: {self.operations} operations, "
            f"{self.non_lmsconnect_errors} non-LMSConnectError, "
            f"{self.hangs} hangs, {self.spurious_deletions} spurious deletions, {self.leaks} leaked "
            f"credentials, {self.check_raised} check() raised ({self.witness_requests} witness requests; "
            f"{self.proxied_requests} proxied, {sum(self.mutations.values())} mutated; "
            f"{sum(f.count for f in self.held.values())} deletions held by a guard)"
        ]
        for f in self.sorted_failures():
            lines.append(
                f"  {f.count:>4}x {f.kind} {f.type} at {f.location} in {f.operation} "
                f"(seed {f.seed}; {'; '.join(f.mutations) or 'no mutation'}): {f.message}"
            )
        return "\n".join(lines)


def _location(exc: BaseException) -> str:
    """The innermost frame in lmsconnect code (core or a plugin) of `exc`, as ``path:line``."""
    found = "(no lmsconnect frame)"
    for frame in traceback.extract_tb(exc.__traceback__):
        path = Path(frame.filename).resolve()
        if path in _HERE or not any(p == "lmsconnect" or p.startswith("lmsconnect_") for p in path.parts):
            continue
        try:
            shown = str(path.relative_to(_ROOT))
        except ValueError:
            shown = "/".join(path.parts[-3:])
        found = f"{shown}:{frame.lineno}"
    return found


def _error_names() -> frozenset[str]:
    names: set[str] = set()
    todo: list[type] = [LMSConnectError]
    while todo:
        cls = todo.pop()
        names.add(cls.__name__)
        todo.extend(cls.__subclasses__())
    return frozenset(names)


def _secrets(lms: Connector[Any]) -> list[str]:
    values = []
    for field in lms.spec.config_fields:
        value = getattr(lms.config, field.name, None)
        if isinstance(value, Secret):
            values.append(value.reveal())
        elif field.secret and isinstance(value, str):
            values.append(value)
    return values


class _Run:
    def __init__(
        self, report: FuzzReport, proxy: HostileProxy, witness: WitnessServer, timeout: float
    ) -> None:
        self.report = report
        self.proxy = proxy
        self.witness = witness
        self.timeout = timeout
        self.secrets: list[str] = []
        self.error_names = _error_names()

    def _met(self, since: int) -> tuple[str, ...]:
        """The mutations the operation met, the latest last (the likeliest cause of a failure)."""
        met: list[AppliedMutation] = self.proxy.applied[since:]
        shown = tuple(f"#{m.index} {m.method} {m.path}: {m.mutation} {m.detail}".strip() for m in met[-5:])
        return ((f"{len(met) - 5} earlier ...",) if len(met) > 5 else ()) + shown

    async def op(self, name: str, seed: int, func: Callable[[], Awaitable[Any]]) -> Any:
        """Run one operation under the timeout; record what escaped it. Returns its result or None."""
        self.report.operations += 1
        self.report.applied.append(f"seed {seed}: {name}")
        applied_before = len(self.proxy.applied)
        seen_before = len(self.witness.seen)
        result: Any = None
        with anyio.move_on_after(self.timeout) as scope:
            try:
                result = await func()
            except LMSConnectError as error:
                self.report.errors_by_code[error.code] += 1
                self.report.errors_by_operation[f"{name}: {error.code}"] += 1
                if name == "check()":  # documented to report remote failures, never to raise them
                    self.report.add(
                        Failure(
                            kind="check_raised", operation=name, type=type(error).__name__,
                            location=_location(error), seed=seed, mutations=self._met(applied_before),
                            message=_short(error),
                        )
                    )
            except Exception as caught:
                leaf = _single(caught)
                self.report.add(
                    Failure(
                        kind="exception", operation=name, type=type(leaf).__name__, location=_location(leaf),
                        seed=seed, mutations=self._met(applied_before), message=_short(leaf),
                    )
                )
        if scope.cancelled_caught:
            self.report.add(
                Failure(
                    kind="hang", operation=name, type="timeout", location=f"> {self.timeout:g} s",
                    seed=seed, mutations=self._met(applied_before),
                )
            )
        self.proxy.unstick()
        self.report.applied.extend(f"  {m}" for m in self.proxy.applied[applied_before:])
        for seen in self.witness.seen[seen_before:]:
            what = seen.credentials(self.secrets)
            if what:
                self.report.add(
                    Failure(
                        kind="leak", operation=name, type=", ".join(what), location=f"{seen.method} witness",
                        seed=seed, mutations=self._met(applied_before), message=seen.path[:120],
                    )
                )
        return result

    def sync_failures(self, name: str, seed: int, report: SyncReport, since: int) -> None:
        """A model a sync failed with a Python error (not an LMSConnectError) is a finding too; deletions
        a mass-deletion guard held back are noted (`FuzzReport.held`)."""
        for model in report.models.values():
            held = getattr(model, "held_deletions", 0)  # stores with a guard report it
            if held:
                note = Failure(
                    kind="held_deletion", operation=f"{name}/{model.model}", type="deletions held",
                    location=f"{model.model}", seed=seed, mutations=self._met(since),
                )
                self.report.held.setdefault(note.key, note).count += held
            if model.error:
                kind = model.error.split(":", 1)[0]
                if kind not in self.error_names:
                    self.report.add(
                        Failure(
                            kind="exception", operation=f"{name}/{model.model}", type=kind,
                            location="(caught by sync; see the list() finding)", seed=seed,
                            mutations=self._met(since), message=model.error[:160],
                        )
                    )


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:157] + "..." if len(text) > 160 else text


async def _read_all(lms: Connector[Any], key: str) -> list[Record]:
    return [record async for record in lms.list(key)]  # type: ignore[call-overload]


BASE_ORIGIN: Final = "lmsconnect-fuzz-base"


def _course(title: str) -> dict[str, Any]:
    """Every field an upsert may carry (the connection drops those its table lacks); the URL is data,
    never fetched."""
    return {"title": title, "course_url": "http://127.0.0.1/fuzz-course", "duration": 90}


def _inputs(clean: Mapping[str, list[Record]], base: str | None) -> dict[str, Any]:
    """Valid action inputs from the clean read (None where the data has nothing to act on): the course
    the clean pass created (`base`) where there is one — 360Learning enrols and completes only in
    courses of the connection's integration — else the first; progressions not completed first."""
    users = clean.get("users", [])
    revisions = sorted(clean.get("course_revisions", []), key=lambda r: getattr(r, "course_id", None) != base)
    progressions = sorted(
        clean.get("course_progressions", []),
        key=lambda p: (
            bool(revisions) and getattr(p, "course_revision_id", None) != revisions[0].id,
            str(getattr(p, "status", "")) == "COMPLETED",
        ),
    )
    return {
        "user": users[-1].id if users else None,
        "revision": revisions[0].id if revisions else None,
        "progressions": [p.id for p in progressions[:5]],
        "progression": None,
    }


async def _base_course(lms: Connector[Any], timeout_s: float) -> str | None:
    """Clean pass: create the course the hostile actions enrol in and complete, and enrol one user."""
    actions = lms.capabilities.actions
    if not actions["upsert_courses"].supported:
        return None
    item = {"origin_id": BASE_ORIGIN, "course": _course("Fuzz base course")}
    result = await lms.upsert_courses({"items": [item]})
    base = result.items[0].id if result.items[0].ok else None
    if not actions["enroll_user"].supported or base is None:
        return base
    users = await _read_all(lms, "users")
    revisions = [r for r in await _read_all(lms, "course_revisions") if getattr(r, "course_id", None) == base]
    if users and revisions:
        enrolled = await lms.enroll_user(user_id=users[-1].id, course_revision_id=revisions[0].id)
        await lms.wait_until_visible(enrolled, timeout_s=timeout_s)
    return base


async def _completable(lms: Connector[Any], candidates: Sequence[str], timeout_s: float) -> str | None:
    """Clean pass: the first progression that completes (a Moodle course without completion tracking
    refuses), so that the hostile completions have a valid target."""
    if not lms.capabilities.actions["complete_course"].supported:
        return None
    for progression in candidates:
        try:
            result = await lms.complete_course(course_progression_id=progression)
        except LMSConnectError:
            continue
        if all(item.ok for item in result.items):
            await lms.wait_until_visible(result, timeout_s=timeout_s)
            return progression
    return None


async def fuzz_connector(
    slug: str,
    *,
    seeds: Iterable[int] = (0,),
    simulator_options: Mapping[str, Any] | None = None,
    connect_options: Mapping[str, Any] | None = None,
    passthrough: Sequence[tuple[str, str, Mapping[str, Any]]] = (("GET", "/", {}),),
    http: HttpOptions | None = None,
    op_timeout_s: float = 30.0,
    rate: float = 1 / 3,
    mutations: Iterable[str] | None = None,
    giant_bytes: int = 64 * 2**20,
    store_dir: str | os.PathLike[str] | None = None,
) -> FuzzReport:
    """Fuzz `slug`'s connector through a `HostileProxy` in front of its simulator (module docstring).

    ``simulator_options`` go to the simulator, ``connect_options`` to ``lmsconnect.connect`` on top of
    the simulator's ``connect_config`` (whose ``base_url`` is moved to the proxy). ``passthrough`` lists
    the raw calls to make, as ``(method, path, kwargs)``; one absolute URL on the witness is always added.
    ``mutations`` restricts the proxy's menu (to reproduce one finding). Raises `RuntimeError` when the
    clean pass fails (the fuzz would prove nothing).
    """
    from . import load_simulator  # the package imports this module

    seeds = tuple(seeds)
    report = FuzzReport(connector=slug, seeds=seeds)
    sim = load_simulator(slug)(**dict(simulator_options or {}))
    await sim.start("127.0.0.1", 0)
    witness = WitnessServer()
    proxy = HostileProxy(sim.url, seed=seeds[0] if seeds else 0, rate=rate, mutations=mutations,
                         witness=witness, giant_bytes=giant_bytes)
    try:
        await witness.start("127.0.0.1", 0)
        await proxy.start("127.0.0.1", 0)
        config = dict(sim.connect_config)
        if "base_url" not in config:
            raise RuntimeError(f"the {slug!r} simulator's connect_config has no base_url to proxy")
        config["base_url"] = proxy.rewrite(config["base_url"])
        config.update(connect_options or {})
        with tempfile.TemporaryDirectory(dir=store_dir) as tmp:
            await _fuzz(slug, config, http or FUZZ_HTTP, seeds, report, proxy, witness, op_timeout_s,
                        passthrough, Path(tmp) / "fuzz.sqlite")
    finally:
        report.mutations = collections.Counter(proxy.counts)
        report.proxied_requests = proxy.requests
        report.witness_requests = len(witness.seen)
        await proxy.stop()
        await witness.stop()
        await sim.stop()
    return report


async def _fuzz(
    slug: str,
    config: dict[str, Any],
    http: HttpOptions,
    seeds: tuple[int, ...],
    report: FuzzReport,
    proxy: HostileProxy,
    witness: WitnessServer,
    op_timeout_s: float,
    passthrough: Sequence[tuple[str, str, Mapping[str, Any]]],
    db: Path,
) -> None:
    run = _Run(report, proxy, witness, op_timeout_s)
    connection = f"fuzz:{slug}"
    config.setdefault("unsupported_fields", "drop")
    async with connect(slug, http=http, **config) as lms, open_store(db) as store:
        run.secrets = _secrets(lms)
        caps = lms.capabilities
        models = [k for k in MODELS if k in caps.models and caps.models[k].supported]
        proxy.enabled = False
        clean: dict[str, list[Record]] = {}
        with anyio.fail_after(op_timeout_s * 4):
            base = await _base_course(lms, op_timeout_s)
            for key in models:
                clean[key] = await _read_all(lms, key)
            inputs = _inputs(clean, base)
            inputs["progression"] = await _completable(lms, inputs["progressions"], op_timeout_s)
            if inputs["progression"] is not None:  # completing changed it: what the store starts from
                clean["course_progressions"] = await _read_all(lms, "course_progressions")
            first = await sync(lms, store, connection=connection)
        if not first.ok:
            raise RuntimeError(f"the clean sync of {slug} failed: {first.failed}")
        report.clean_records = {k: len(v) for k, v in clean.items()}
        cursor = await store.last_cursor()
        proxy.enabled = True

        async def hostile_sync(name: str, seed: int) -> None:
            nonlocal cursor
            since = len(proxy.applied)
            result = await run.op(name, seed, lambda: sync(lms, store, connection=connection))
            if isinstance(result, SyncReport):
                run.sync_failures(name, seed, result, since)
            deleted: dict[str, list[str]] = collections.defaultdict(list)
            async for change in store.changes(since=cursor):
                cursor = change.cursor
                if change.kind.value == "deleted":
                    deleted[change.model].append(change.remote_id)
            for model, ids in deleted.items():
                report.add(
                    Failure(
                        kind="spurious_deletion", operation=f"{name}/{model}", type="deleted change",
                        location=f"{len(ids)} of {report.clean_records.get(model, '?')} {model}",
                        seed=seed, mutations=run._met(since),
                        message="remote ids " + ", ".join(ids[:8]) + (" ..." if len(ids) > 8 else ""),
                    ),
                    count=len(ids),
                )

        for seed in seeds:
            proxy.reseed(seed)
            await hostile_sync("sync", seed)
            for key in models:
                await run.op(f"list({key})", seed, functools.partial(_read_all, lms, key))
            await run.op("check()", seed, lms.check)
            calls = [*passthrough, ("GET", f"{witness.url}/passthrough", {})]
            if caps.features["passthrough"].supported:
                for method, path, kwargs in calls:
                    shown = "witness URL" if path.startswith(witness.url) else path
                    await run.op(
                        f"passthrough({method} {shown})", seed,
                        functools.partial(lms.passthrough, method, path, **kwargs),
                    )
            await _actions(run, lms, seed, inputs)
            await hostile_sync("sync again", seed)


async def _actions(run: _Run, lms: Connector[Any], seed: int, inputs: Mapping[str, Any]) -> None:
    """The supported actions with valid inputs; the course deactivated is the one this seed created, so
    that nothing a sync has seen is ever removed upstream (TalentLMS deactivation deletes)."""
    actions = lms.capabilities.actions
    created: str | None = None
    if actions["upsert_courses"].supported:
        item = {"origin_id": f"fuzz-{seed}", "course": _course(f"Fuzz course {seed}")}
        upsert = functools.partial(lms.upsert_courses, {"items": [item]})
        result = await run.op("upsert_courses", seed, upsert)
        if result is not None and result.items and result.items[0].ok:
            created = result.items[0].id
    if actions["deactivate_course"].supported and created:
        await run.op("deactivate_course", seed, lambda: lms.deactivate_course(course_id=created))
    if actions["enroll_user"].supported and inputs["user"] and inputs["revision"]:
        await run.op(
            "enroll_user", seed,
            lambda: lms.enroll_user(user_id=inputs["user"], course_revision_id=inputs["revision"]),
        )
    if actions["complete_course"].supported and inputs["progression"]:
        await run.op(
            "complete_course", seed, lambda: lms.complete_course(course_progression_id=inputs["progression"])
        )
