"""The sync engine against the Toy LMS simulator: changed_at, remote_deleted_at, the change feed, failures,
locking, resuming, progress, and the two CLI entry points."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import attrs
import pytest
from lmsconnect_toylms import ToyConnector
from lmsconnect_toylms.testing import ToySimulator

import lmsconnect
from lmsconnect import (
    Course,
    CourseProgression,
    CourseRevision,
    DeletionGuard,
    InvalidInput,
    NotSupported,
    RateLimited,
    RemoteError,
    User,
)
from lmsconnect._cli import main as cli_main
from lmsconnect._store import ChangeKind, StateStore, SyncInProgress, open_store
from lmsconnect._sync import SyncProgress, _ProgressDisplay, cli_changes, cli_sync, connection_key, sync

Store = Any  # the `store` fixture of conftest: each test runs against every engine


@pytest.fixture
async def sim() -> AsyncIterator[ToySimulator]:
    async with ToySimulator(users=130, courses=8, enrollments=200, seed=3) as simulator:
        yield simulator


def toy(sim: ToySimulator, **kwargs: Any) -> lmsconnect.Connector[Any]:
    return lmsconnect.connect("toylms", **sim.connect_config, calls_per_second=1000, **kwargs)


async def changes(store: StateStore, since: int = 0) -> list[tuple[str, str, str]]:
    return [(c.kind.value, c.model, c.remote_id) async for c in store.changes(since=since)]


async def by_remote(store: StateStore, model: Any) -> dict[str, Any]:
    return {r.remote_id: r async for r in store.list(model)}


class TestFirstSync:
    async def test_every_record_is_created_once(self, sim: ToySimulator, store: Store) -> None:
        """A first sync records one `created` change per record of every supported model."""
        report = await sync(toy(sim), store)
        assert report.ok and not report.resumed
        assert report.models["users"].created == 130
        assert report.models["courses"].created == 8
        assert report.models["course_revisions"].created == 8
        assert report.models["course_progressions"].created == len(sim.enrollments)
        log = await changes(store)
        assert len(log) == len(set(log)) == 130 + 8 + 8 + len(sim.enrollments)
        assert {k for k, _, _ in log} == {"created"}

    async def test_records_read_back_with_changed_at_and_remote_data(
        self, sim: ToySimulator, store: Store
    ) -> None:
        """store.list streams typed records with changed_at set, remote_deleted_at unset, raw payload kept."""
        await sync(toy(sim), store)
        users = await by_remote(store, User)
        assert len(users) == 130
        user = users["7"]
        assert isinstance(user, User)
        assert isinstance(user.status, lmsconnect.UserStatus)
        assert user.changed_at is not None and user.remote_deleted_at is None
        assert user.remote_data == {"/api/users": sim.users[7]}
        revisions = await by_remote(store, "course_revisions")
        assert all(isinstance(r, CourseRevision) for r in revisions.values())

    async def test_report_counts_calls_and_time(self, sim: ToySimulator, store: Store) -> None:
        """The report gives HTTP calls made (what the simulator received) and the time taken."""
        before = sim.calls
        report = await sync(toy(sim), store)
        assert report.calls == sim.calls - before > 0
        assert report.duration_s > 0
        assert report.totals == {
            "created": report.models["users"].created + 8 + 8 + len(sim.enrollments),
            "updated": 0,
            "deleted": 0,
        }
        assert "course_progressions" in report.summary_table()
        assert json.loads(json.dumps(report.to_dict()))["ok"] is True


class TestIncremental:
    async def test_unchanged_records_keep_changed_at(self, sim: ToySimulator, store: Store) -> None:
        """A second sync of an unchanged tenant records no change and keeps every changed_at."""
        await sync(toy(sim), store)
        first = {m: await by_remote(store, m) for m in (User, Course, CourseRevision, CourseProgression)}
        cursor = await store.last_cursor()
        report = await sync(toy(sim), store)
        assert report.totals == {"created": 0, "updated": 0, "deleted": 0}
        assert report.models["users"].unchanged == 130
        assert [c for c in await changes(store, since=cursor) if c[0] == "deleted"] == []
        assert len(await by_remote(store, User)) == 130
        for model, records in first.items():
            again = await by_remote(store, model)
            assert {k: r.changed_at for k, r in again.items()} == {
                k: r.changed_at for k, r in records.items()
            }

    async def test_edited_record_gets_new_changed_at_and_one_update(
        self, sim: ToySimulator, store: Store
    ) -> None:
        """Editing a unified field gives that record, and only it, a new changed_at and one `updated`."""
        await sync(toy(sim), store)
        before = await by_remote(store, User)
        cursor = await store.last_cursor()
        sim.users[5]["email"] = "renamed@toy.example"
        report = await sync(toy(sim), store)
        assert report.models["users"].updated == 1
        assert await changes(store, since=cursor) == [("updated", "users", "5")]
        after = await by_remote(store, User)
        assert after["5"].work_email == "renamed@toy.example"
        assert after["5"].changed_at > before["5"].changed_at
        assert after["6"].changed_at == before["6"].changed_at
        # And a third sync does not report it again.
        cursor = await store.last_cursor()
        await sync(toy(sim), store)
        assert [c for c in await changes(store, since=cursor) if c[0] == "deleted"] == []
        assert len(await by_remote(store, User)) == 130

    async def test_raw_only_change_is_stored_without_an_update(
        self, sim: ToySimulator, store: Store
    ) -> None:
        """A vendor field we do not map changes remote_data but neither changed_at nor the change log."""
        await sync(toy(sim), store)
        before = await by_remote(store, User)
        cursor = await store.last_cursor()
        sim.users[9]["last_login"] = "yesterday"
        await sync(toy(sim), store)
        after = await by_remote(store, User)
        assert [c for c in await changes(store, since=cursor) if c[0] == "deleted"] == []
        assert len(await by_remote(store, User)) == 130
        assert after["9"].changed_at == before["9"].changed_at
        assert after["9"].remote_data == {"/api/users": sim.users[9]}

    async def test_removed_record_gets_remote_deleted_at_and_one_delete(
        self, sim: ToySimulator, store: Store
    ) -> None:
        """A record missing from a complete read gets remote_deleted_at and exactly one `deleted`."""
        await sync(toy(sim), store)
        cursor = await store.last_cursor()
        del sim.users[11]
        report = await sync(toy(sim), store)
        assert report.models["users"].deleted == 1
        assert await changes(store, since=cursor) == [("deleted", "users", "11")]
        gone = (await by_remote(store, User))["11"]
        assert gone.remote_deleted_at is not None
        assert gone.changed_at == gone.remote_deleted_at
        live = {u.remote_id async for u in store.list(User, include_deleted=False)}
        assert "11" not in live and len(live) == 129
        cursor = await store.last_cursor()
        await sync(toy(sim), store)
        assert [c for c in await changes(store, since=cursor) if c[0] == "deleted"] == []
        assert len(await by_remote(store, User)) == 130

    async def test_reappearing_record_is_created_again(self, sim: ToySimulator, store: Store) -> None:
        """A deleted record that comes back loses remote_deleted_at and is announced as `created`."""
        await sync(toy(sim), store)
        saved = sim.users.pop(12)
        await sync(toy(sim), store)
        cursor = await store.last_cursor()
        sim.users[12] = saved
        await sync(toy(sim), store)
        assert await changes(store, since=cursor) == [("created", "users", "12")]
        back = (await by_remote(store, User))["12"]
        assert back.remote_deleted_at is None

    async def test_new_enrollment_and_deleted_course(self, sim: ToySimulator, store: Store) -> None:
        """The demo's story: a course removed and a new enrolment show up in the feed."""
        async with toy(sim) as lms:
            await sync(lms, store)
            cursor = await store.last_cursor()
            free = next(u for u in sim.users if (1, u) not in sim.enrollments)
            await lms.enroll_user(
                user_id=lms.make_id("users", free), course_revision_id=lms.make_id("course_revisions", 1)
            )
            victim = 2
            sim.courses.pop(victim)
            await sync(lms, store)
        log = await changes(store, since=cursor)
        assert ("created", "course_progressions", f"1:{free}") in log
        assert ("deleted", "courses", str(victim)) in log
        assert ("deleted", "course_revisions", str(victim)) in log


class TestChangeFeed:
    async def test_consumer_polling_during_a_sync_sees_every_change_once(
        self, sim: ToySimulator, store_location: str
    ) -> None:
        """A consumer reading `since=cursor` while a sync writes gets every change exactly once, in order."""
        async with open_store(store_location) as store, open_store(store_location) as reader:
            seen: list[int] = []
            one_consumer = anyio.Lock()  # progress arrives from the concurrent model readers

            async def poll(_: SyncProgress) -> None:
                async with one_consumer:
                    async for change in reader.changes(since=seen[-1] if seen else 0):
                        seen.append(change.cursor)

            await sync(toy(sim), store, progress=poll, batch_size=20)
            del sim.users[1]
            sim.users[2]["first"] = "Changed"
            await sync(toy(sim), store, progress=poll, batch_size=20)
            await poll(SyncProgress(model="users", status="complete"))
            assert seen == list(range(1, await store.last_cursor() + 1))


class FlakyToy(ToyConnector):
    """Toy connector whose user read fails after `fail_after` records, as a 500 on page 2 would."""

    fail_after = 60

    async def read_users(self) -> AsyncIterator[User]:
        count = 0
        async for user in super().read_users():
            if count == self.fail_after:
                raise RemoteError("GET /api/users failed", status=500, connector="toylms")
            count += 1
            yield user


class TestFailedRead:
    async def test_partial_read_marks_nothing_deleted(self, sim: ToySimulator, store: Store) -> None:
        """A model whose read fails part-way records what it read, marks nothing deleted, and says so."""
        key = "toy-flaky"
        await sync(toy(sim), store, connection=key)
        cursor = await store.last_cursor()
        sim.users[3]["first"] = "Edited"  # read before the failure: recorded
        sim.users[100]["first"] = "Edited"  # after it: not seen this time
        del sim.users[20]  # removed: only a complete read may say so
        del sim.courses[4]
        flaky = FlakyToy.from_config(**sim.connect_config, calls_per_second=1000)
        report = await sync(flaky, store, connection=key)
        assert not report.ok and report.failed == ("users",)
        assert report.models["users"].status == "failed"
        assert "RemoteError" in (report.models["users"].error or "")
        assert report.models["users"].error_code == "REMOTE.ERROR"
        assert report.error_codes == {"users": "REMOTE.ERROR"}
        as_dict = report.to_dict()
        assert as_dict["error_codes"] == {"users": "REMOTE.ERROR"}
        assert as_dict["models"]["users"]["error_code"] == "REMOTE.ERROR"
        assert as_dict["models"]["courses"]["error_code"] is None
        assert report.models["users"].deleted == 0
        assert report.models["courses"].status == "complete" and report.models["courses"].deleted == 1
        log = await changes(store, since=cursor)
        assert ("updated", "users", "3") in log
        assert not [c for c in log if c[1] == "users" and c[0] == "deleted"]
        assert (await by_remote(store, User))["20"].remote_deleted_at is None
        assert "nothing was marked deleted" in report.summary_table()
        # The next complete read catches up.
        cursor = await store.last_cursor()
        await sync(toy(sim), store, connection=key)
        after = await changes(store, since=cursor)
        assert ("deleted", "users", "20") in after and ("updated", "users", "100") in after


class RateLimitedToy(ToyConnector):
    """Toy connector whose course read ends in a 429 the HTTP layer gave up on, asking for 30 s."""

    async def read_courses(self) -> AsyncIterator[Course]:
        raise RateLimited("GET /api/courses: 429", retry_after=30.0, connector="toylms")
        yield  # an async generator  # pragma: no cover


class TestFailureCodes:
    async def test_rate_limited_model_says_when_to_retry(self, sim: ToySimulator, store: Store) -> None:
        """A rate-limited model's report carries REMOTE.RATE_LIMITED and the vendor's retry_after."""
        lms = RateLimitedToy.from_config(**sim.connect_config, calls_per_second=1000)
        report = await sync(lms, store, connection="toy-429")
        courses = report.models["courses"]
        assert (courses.status, courses.error_code) == ("failed", "REMOTE.RATE_LIMITED")
        assert courses.retry_after == 30.0
        assert courses.code == "REMOTE.RATE_LIMITED"
        assert report.error_codes == {"courses": "REMOTE.RATE_LIMITED"}
        assert report.to_dict()["models"]["courses"]["retry_after"] == 30.0
        assert report.models["users"].status == "complete" and report.models["users"].retry_after is None

    async def test_wrong_key_is_one_call_and_one_error(self, sim: ToySimulator, store: Store) -> None:
        """Rejected credentials: one failed call, the other models not tried, and one error in the report."""
        lms = lmsconnect.connect("toylms", base_url=sim.url, token="wrong-token", calls_per_second=1000)
        report = await sync(lms, store, connection="toy-key")
        assert sim.calls == 1 and report.calls == 1
        statuses = {k: m.status for k, m in report.models.items()}
        assert list(statuses.values()).count("failed") == 1
        assert set(statuses.values()) == {"failed", "not_run"}
        assert set(report.error_codes.values()) == {"REMOTE.AUTHENTICATION"}
        assert report.failed == tuple(report.models) and not report.ok
        table = report.summary_table()
        assert table.count("AuthenticationError") == 1 and table.count("not run:") == 1
        # Nothing was read, nothing marked deleted; with the right key the next sync reads everything.
        assert await changes(store) == []
        again = await sync(toy(sim), store, connection="toy-key")
        assert again.ok and all(m.status == "complete" for m in again.models.values())


class TestMassDeletionGuard:
    async def test_wrong_answer_listing_one_user_deletes_nothing(
        self, sim: ToySimulator, store: Store
    ) -> None:
        """A complete read that lost most users (a well-formed but wrong answer) marks none deleted, records
        no `deleted`, and the report says SYNC.DELETIONS_HELD with the counts."""
        await sync(toy(sim), store)
        cursor = await store.last_cursor()
        for u in list(sim.users)[1:]:
            del sim.users[u]
        report = await sync(toy(sim), store)
        users = report.models["users"]
        assert users.status == "complete" and users.deleted == 0 and users.held_deletions == 129
        assert users.code == "SYNC.DELETIONS_HELD" and report.held == {"users": 129}
        assert not [c async for c in store.changes(since=cursor) if c.kind is ChangeKind.DELETED]
        assert len([u async for u in store.list(User, include_deleted=False)]) == 130
        table = report.summary_table()
        assert "129 deletions held (SYNC.DELETIONS_HELD)" in table and "129 of 130 stored" in table
        assert "--confirm-deletions users" in table
        assert report.to_dict()["codes"] == ["SYNC.DELETIONS_HELD"]

    async def test_confirmation_accepts_them(self, sim: ToySimulator, store: Store) -> None:
        """confirm_deletions=[model] lets the same read mark them deleted, each once."""
        await sync(toy(sim), store)
        for u in list(sim.users)[1:]:
            del sim.users[u]
        assert (await sync(toy(sim), store)).held == {"users": 129}
        cursor = await store.last_cursor()
        report = await sync(toy(sim), store, confirm_deletions=[User])
        assert report.models["users"].deleted == 129 and report.held == {}
        log = [c async for c in store.changes(since=cursor)]
        assert len(log) == 129 and {c.kind for c in log} == {ChangeKind.DELETED}

    async def test_small_churn_and_custom_guard(self, sim: ToySimulator, store: Store) -> None:
        """Ordinary churn passes the default guard; a stricter guard holds it; None turns it off."""
        await sync(toy(sim), store)
        for u in (1, 2, 3):
            del sim.users[u]
        strict = DeletionGuard(max_ratio=0.01, floor=2)
        assert (await sync(toy(sim), store, deletion_guard=strict)).held == {"users": 3}
        assert (await sync(toy(sim), store)).models["users"].deleted == 3
        for u in range(4, 40):
            del sim.users[u]
        assert (await sync(toy(sim), store, deletion_guard=None)).models["users"].deleted == 36

    async def test_cli_exit_3_then_confirm_flag(self, sim: ToySimulator, tmp_path: Path) -> None:
        """The CLI prints the held deletions with the code and exits 3; --confirm-deletions users accepts."""
        db = str(tmp_path / "cli.db")
        config = json.dumps({**sim.connect_config, "calls_per_second": 1000})
        argv = ["sync", "toylms", "--config-json", config, "--db", db, "--quiet"]

        async def cli(*extra: str) -> tuple[int, str]:
            out = io.StringIO()  # the CLI runs its own event loop: in a thread, beside the simulator's
            code = await anyio.to_thread.run_sync(cli_main, [*argv, *extra], out)
            return code, out.getvalue()

        assert (await cli())[0] == 0
        for u in list(sim.users)[5:]:
            del sim.users[u]
        code, text = await cli()
        assert code == 3 and "125 deletions held (SYNC.DELETIONS_HELD)" in text
        code, text = await cli("--confirm-deletions", "users")
        assert code == 0 and "held" not in text, text
        assert (await cli("--confirm-deletions", "userz"))[0] == 2

    async def test_unknown_model_is_invalid_input(self, sim: ToySimulator, store: Store) -> None:
        """sync(models=...) and confirm_deletions refuse an unknown model name with InvalidInput."""
        with pytest.raises(InvalidInput, match="unknown model 'userz'"):
            await sync(toy(sim), store, models=["userz"])
        with pytest.raises(InvalidInput, match="unknown model"):
            await sync(toy(sim), store, confirm_deletions=["userz"])
        assert await store.connections() == []


class TestConcurrency:
    async def test_second_sync_of_same_connection_fails_clearly(self, store_location: str) -> None:
        """While a sync runs, a second sync of the same connection raises SyncInProgress naming the holder."""
        async with (
            ToySimulator(users=400, courses=4, enrollments=20, latency=0.03) as sim,
            open_store(store_location) as one,
            open_store(store_location) as two,
        ):
            errors: list[BaseException] = []
            running = anyio.Event()

            async def second() -> None:
                await running.wait()
                try:
                    await sync(toy(sim), two)
                except SyncInProgress as exc:
                    errors.append(exc)

            async with anyio.create_task_group() as tg:
                tg.start_soon(lambda: sync(toy(sim), one, batch_size=50, progress=lambda _: running.set()))
                tg.start_soon(second)
            assert len(errors) == 1
            assert errors[0].code == "STORE.SYNC_IN_PROGRESS"  # type: ignore[attr-defined]
            assert "another sync" in str(errors[0]) and "pid" in str(errors[0])
            log = await changes(one)
            assert len(log) == len(set(log)) == 400 + 4 + 4 + len(sim.enrollments)

    async def test_second_sync_waits_when_asked(self, store_location: str) -> None:
        """With wait=, the second sync runs after the first; the change log holds each change once."""
        async with (
            ToySimulator(users=400, courses=4, enrollments=20, latency=0.03) as sim,
            open_store(store_location) as one,
            open_store(store_location) as two,
        ):
            reports = []
            running = anyio.Event()

            async def first() -> None:
                reports.append(await sync(toy(sim), one, batch_size=50, progress=lambda _: running.set()))

            async def second() -> None:
                await running.wait()
                reports.append(await sync(toy(sim), two, wait=30))

            async with anyio.create_task_group() as tg:
                tg.start_soon(first)
                tg.start_soon(second)
            assert [r.totals["created"] for r in reports] == [408 + len(sim.enrollments), 0]
            log = await changes(one)
            assert len(log) == len(set(log)) == 408 + len(sim.enrollments)

    async def test_lock_held_by_another_process(self, sim: ToySimulator, store_location: str) -> None:
        """A sync holding the lock in another process makes ours fail with its pid; once it is gone
        (killed, lease never released), ours takes over: at once on SQLite (same host, pid gone), after
        the lease on PostgreSQL (which cannot trust hosts and pids)."""
        db = store_location
        postgres = db.startswith("postgresql://")
        lease = 2 if postgres else 3600
        code = (
            "import asyncio, sys\n"
            "from lmsconnect._store import open_store\n"
            "async def main():\n"
            "    async with open_store(sys.argv[1]) as s:\n"
            f"        assert await s.acquire_lock('shared', 'other', lease_s={lease}) is None\n"
            "        print('locked', flush=True)\n"
            "        sys.stdin.read()\n"
            "asyncio.run(main())\n"
        )
        async with await anyio.open_process([sys.executable, "-c", code, str(db)]) as proc:
            assert proc.stdout is not None and proc.stdin is not None
            assert (await proc.stdout.receive()).startswith(b"locked")
            async with open_store(db) as store:
                with pytest.raises(SyncInProgress, match=f"pid {proc.pid} "):
                    await sync(toy(sim), store, connection="shared")
                proc.kill()
                await proc.wait()
                report = await sync(toy(sim), store, connection="shared", wait=10 if postgres else 0)
                assert report.ok and report.totals["created"] == 146 + len(sim.enrollments)

    async def test_other_connections_are_not_blocked(self, sim: ToySimulator, store: Store) -> None:
        """The lock is per connection: two tenants sync into one store at once."""
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: sync(toy(sim), store, connection="a"))
            tg.start_soon(lambda: sync(toy(sim), store, connection="b"))
        assert sorted(await store.connections()) == ["a", "b"]
        a = [c async for c in store.changes(connection="a")]
        assert len(a) == 146 + len(sim.enrollments)


class TestResume:
    async def test_cancelled_sync_resumes_with_the_same_change_log(self, store_location: str) -> None:
        """A sync cut off mid-run is resumed by the next one: same log as a clean run, nothing twice."""

        async def scenario(path: str, cut: float | None) -> list[tuple[str, str, str]]:
            async with (
                ToySimulator(users=300, courses=6, enrollments=150, seed=5, latency=0.01) as sim,
                open_store(path) as store,
            ):
                await sync(toy(sim), store, connection="c", batch_size=20)
                for u in (1, 2, 3):
                    del sim.users[u]
                sim.users[50]["first"] = "X"
                sim.courses[1]["title"] = "Renamed"
                if cut is not None:
                    with anyio.move_on_after(cut):
                        await sync(toy(sim), store, connection="c", batch_size=20)
                    runs = await store.runs()
                    assert runs[-1]["status"] == "running"
                report = await sync(toy(sim), store, connection="c", batch_size=20)
                assert report.resumed is (cut is not None)
                return await changes(store)

        clean = await scenario(store_location, None)
        cut = await scenario(store_location + "cut", 0.08)  # another file, or another schema

        def per_model(log: list[tuple[str, str, str]]) -> dict[str, list[tuple[str, str, str]]]:
            out: dict[str, list[tuple[str, str, str]]] = {}
            for c in log:
                out.setdefault(c[1], []).append(c)
            return out

        assert per_model(cut) == per_model(clean)

    async def test_resumed_run_skips_models_it_completed(self, sim: ToySimulator, store: Store) -> None:
        """A run stopped after some models completed resumes with only the others; the report says so."""

        class Stop(Exception):
            pass

        def stop_after_courses(event: SyncProgress) -> None:
            if event.model == "courses" and event.status == "complete":
                raise Stop

        sim.latency = 0.02  # users (3 pages) are still being read when courses (1 page) complete
        with pytest.raises(Stop):
            await sync(toy(sim), store, models=["courses", "users"], progress=stop_after_courses)
        report = await sync(toy(sim), store, models=["courses", "users"])
        assert report.resumed
        assert report.models["courses"].status == "skipped"
        assert report.models["courses"].created == 8  # the run's changes, across both attempts
        assert report.models["users"].status == "complete" and report.models["users"].created == 130
        log = await changes(store)
        assert len(log) == len(set(log)) == 138


class TestProgressAndModels:
    async def test_progress_reports_each_model(self, sim: ToySimulator, store: Store) -> None:
        """The callback hears each model while it reads and once at its end (sync or async callbacks)."""
        events: list[SyncProgress] = []

        async def collect(event: SyncProgress) -> None:
            events.append(event)

        await sync(toy(sim), store, progress=collect, batch_size=50)
        ends = {e.model: e for e in events if e.status != "reading"}
        assert set(ends) == {"users", "courses", "course_revisions", "course_progressions"}
        assert ends["users"].read == 130 and ends["users"].created == 130
        assert any(e.status == "reading" and e.model == "users" for e in events)

    async def test_progress_carries_calls_pages_rate_and_eta(self, store: Store) -> None:
        """Each event says the model's calls so far and, where the vendor announced pages, how many of
        them are read; the end says all of them, and a read that lasts gets a rate and an ETA."""
        events: list[SyncProgress] = []
        # Five pages of users at 0.4 s each: from the first second to the last page, a rate and an ETA.
        async with ToySimulator(users=250, courses=1, enrollments=1, latency=0.4) as slow:
            await sync(toy(slow), store, models=["users"], progress=events.append, batch_size=20,
                       progress_every=0.2)
            calls = slow.calls_by_route["GET /api/users"]
        users = [e for e in events if e.model == "users"]
        assert [e.calls for e in users] == sorted(e.calls for e in users)
        end = users[-1]
        assert end.status == "complete" and end.calls == calls == 5
        assert (end.pages_done, end.pages_total, end.total, end.fraction) == (5, 5, None, 1.0)
        reading = [e for e in users if e.status == "reading"]
        assert {e.pages_done for e in reading} >= {1, 2, 3}  # (None before the first page)
        assert {e.pages_total for e in reading if e.pages_done} == {5}
        assert any(e.eta_s is not None and 0 < e.eta_s < 60 and e.rate for e in reading)
        assert all(e.eta_s is None for e in users if e.pages_done == 5)

    async def test_a_read_that_waits_is_still_heard_from(self, sim: ToySimulator, store: Store) -> None:
        """While a model's read produces nothing (a slow vendor), progress still comes every
        progress_every seconds, with the time elapsed."""
        events: list[SyncProgress] = []
        sim.latency = 1.2
        await sync(toy(sim), store, models=["courses"], progress=events.append, progress_every=0.25)
        before_first = [e for e in events if e.status == "reading" and e.read == 0]
        assert len(before_first) >= 2 and before_first[-1].elapsed_s > before_first[0].elapsed_s
        assert before_first[-1].calls == 1  # the first page is on its way

    async def test_progress_every_must_be_positive(self, sim: ToySimulator, store: Store) -> None:
        """progress_every=0 is refused before any call."""
        with pytest.raises(ValueError, match="progress_every"):
            await sync(toy(sim), store, progress=print, progress_every=0)
        assert sim.calls == 0

    async def test_models_subset_and_unsupported(self, sim: ToySimulator, store: Store) -> None:
        """models= restricts the run; a model the table lacks raises NotSupported before any call."""
        report = await sync(toy(sim), store, models=[User])
        assert list(report.models) == ["users"]
        with pytest.raises(NotSupported):
            await sync(toy(sim), store, models=["skills"])

    async def test_connection_key_ignores_secrets(self, sim: ToySimulator) -> None:
        """The default connection key is stable and does not depend on (or reveal) the token."""
        a = connection_key(toy(sim))
        b = connection_key(
            lmsconnect.connect("toylms", base_url=sim.url, token="other", calls_per_second=1000)
        )
        assert a == b and a.startswith("toylms:") and sim.token not in a


class TestCli:
    async def test_cli_sync_prints_summary(self, sim: ToySimulator, tmp_path: Path) -> None:
        """cli_sync syncs, prints per-model progress lines and the summary table, exits 0."""
        out = io.StringIO()
        config = {**sim.connect_config, "calls_per_second": 1000}
        code = await cli_sync("toylms", config, str(tmp_path / "cli.db"), out=out, progress=True)
        text = out.getvalue()
        assert code == 0, text
        assert "users" in text and "created" in text and "HTTP calls" in text
        assert sim.token not in text

    async def test_cli_sync_bad_config_raises_for_the_cli(self, tmp_path: Path) -> None:
        """A configuration error is raised (for the CLI to print on stderr, exit 2), writing nothing."""
        out = io.StringIO()
        with pytest.raises(lmsconnect.ConfigurationError) as caught:
            await cli_sync("toylms", {"token": "s3cret"}, str(tmp_path / "x.db"), out=out)
        assert out.getvalue() == "" and "s3cret" not in str(caught.value)
        assert not (tmp_path / "x.db").exists()

    async def test_cli_changes_text_and_json(
        self, sim: ToySimulator, tmp_path: Path, store_location: str
    ) -> None:
        """cli_sync and cli_changes work with either store (--db PATH or URL): changes after a cursor, as
        text with the next cursor or as JSON lines."""
        db = store_location
        config = {**sim.connect_config, "calls_per_second": 1000}
        assert await cli_sync("toylms", config, db, out=io.StringIO(), progress=False) == 0
        out = io.StringIO()
        assert await cli_changes(db, 5, True, out) == 0
        rows = [json.loads(line) for line in out.getvalue().splitlines()]
        assert rows[0]["cursor"] == 6 and {r["kind"] for r in rows} == {"created"}
        assert set(rows[0]) >= {"cursor", "kind", "model", "id", "connection", "at"}
        out = io.StringIO()
        assert await cli_changes(db, len(rows) + 3, False, out) == 0
        assert out.getvalue().strip().endswith(f"--since {len(rows) + 5}")
        missing = io.StringIO()
        with pytest.raises(lmsconnect.StoreError, match="no store at"):
            await cli_changes(str(tmp_path / "nope.db"), 0, False, missing)
        assert missing.getvalue() == "" and not (tmp_path / "nope.db").exists()


def test_change_kind_values() -> None:
    """Change kinds are the three words consumers branch on."""
    assert [k.value for k in ChangeKind] == ["created", "updated", "deleted"]


class TestRateBudgetWaits:
    async def test_a_long_wait_shows_in_progress_and_the_cli_display(self, store: Store) -> None:
        """A budget wait over report_wait_s reaches the progress callback and the CLI display."""
        async with ToySimulator(users=130, courses=2, enrollments=2) as small:
            lms = lmsconnect.connect("toylms", **small.connect_config, calls_per_second=2,
                                     http=lmsconnect.HttpOptions(report_wait_s=0.3))
            events: list[SyncProgress] = []
            report = await sync(lms, store, models=["users"], progress=events.append)
        assert report.ok and report.models["users"].created == 130
        waiting = [e for e in events if e.waiting_until is not None]
        assert waiting and all(e.model == "users" and e.status == "reading" for e in waiting)
        out = io.StringIO()
        display = _ProgressDisplay(out, ["users"], live=False)
        for event in events:
            display(event)
        until = waiting[0].waiting_until
        assert until is not None
        assert f"waiting for rate budget until {until.astimezone():%H:%M:%S}" in out.getvalue()
        assert events[-1].waiting_until is None and events[-1].status == "complete"

    async def test_a_wait_over_max_wait_fails_the_model_and_deletes_nothing(
        self, sim: ToySimulator, store: Store
    ) -> None:
        """Past max_wait_s the read raises RateLimited: that model fails, and no record is marked deleted."""
        await sync(toy(sim), store, connection="toy")
        capped = lmsconnect.connect("toylms", **sim.connect_config, calls_per_second=1,
                                    http=lmsconnect.HttpOptions(max_wait_s=0.2))
        cursor = max([c.cursor async for c in store.changes(since=0)])
        report = await sync(capped, store, models=["users"], connection="toy")
        assert report.models["users"].status == "failed"
        assert "RateLimited" in (report.models["users"].error or "")
        assert "max_wait_s" in (report.models["users"].error or "")
        assert [c for c in await changes(store, since=cursor) if c[0] == "deleted"] == []
        assert len(await by_remote(store, User)) == 130


class _ToyWithProgress(ToyConnector):
    """The Toy connector as a later lmsconnect would ship it: it also fills `progress` (a field added
    after the store was written), for completed enrolments only."""

    async def read_course_progressions(self) -> AsyncIterator[CourseProgression]:
        async for record in super().read_course_progressions():
            done = record.status is lmsconnect.ProgressionStatus.COMPLETED
            yield attrs.evolve(record, progress=100.0) if done else record


class TestUpgrade:
    async def test_new_fields_make_one_update_only_where_they_have_a_value(
        self, sim: ToySimulator, store: Store
    ) -> None:
        """After an upgrade, records that gain a value for a new field are `updated` once; no others are."""
        for enrollment in list(sim.enrollments.values())[::3]:
            enrollment["done"] = 1_700_000_000
        completed = {f"{c}:{u}" for (c, u), e in sim.enrollments.items() if e["done"]}
        old = toy(sim)
        await sync(old, store, connection="acme")
        new = _ToyWithProgress.from_config(**sim.connect_config, calls_per_second=1000)
        first = await sync(new, store, connection="acme")
        assert first.models["course_progressions"].updated == len(completed) > 0
        assert sum(m.updated for m in first.models.values()) == len(completed)
        updated = {rid for kind, model, rid in await changes(store) if kind == "updated"}
        assert updated == completed
        stored = await by_remote(store, CourseProgression)
        assert {rid for rid, p in stored.items() if p.progress == 100.0} == completed
        second = await sync(new, store, connection="acme")
        assert sum(m.updated for m in second.models.values()) == 0


class _ToyProgressionsOnRequest(ToyConnector):
    """The Toy connector with progressions declared as costing extra calls (read only when asked for)."""

    capabilities = attrs.evolve(
        ToyConnector.capabilities,
        models={
            **ToyConnector.capabilities.models,
            "course_progressions": attrs.evolve(
                ToyConnector.capabilities.models["course_progressions"], by_default=False
            ),
        },
    )


class TestModelsOnRequest:
    async def test_a_model_not_read_by_default_is_read_only_when_named(
        self, sim: ToySimulator, store: Store
    ) -> None:
        """A sync without models= skips an on-request model (no calls for it); naming it reads it."""
        lms = _ToyProgressionsOnRequest.from_config(**sim.connect_config, calls_per_second=1000)
        default = await sync(lms, store, connection="acme")
        assert "course_progressions" not in default.models and "users" in default.models
        assert sim.calls_by_route["GET /api/enrollments"] == 0
        named = await sync(lms, store, connection="acme", models=["course_progressions"])
        assert named.models["course_progressions"].created == len(sim.enrollments)
        assert sim.calls_by_route["GET /api/enrollments"] > 0
        assert "yes (on request)" in str(
            lmsconnect._capabilities.matrix_rows([lms.capabilities])[1]
        )
