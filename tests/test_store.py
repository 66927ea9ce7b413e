"""The state stores on their own, each test against every engine (the `store` fixture of conftest): schema
and migrations, batches, deletions and the mass-deletion guard, reading back, corrupt rows, the lock."""

from __future__ import annotations

import datetime as dt
import os
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from lmsconnect import DeletionGuard, InvalidInput, User, UserStatus
from lmsconnect._models import ModelName, make_id
from lmsconnect._store import (
    SCHEMA_VERSION,
    RunInfo,
    SQLiteStore,
    StateStore,
    StoreError,
    fingerprint,
    open_store,
)

Store = Any  # SQLiteStore or PostgresStore: the contract suite runs on both


def is_postgres(location: str) -> bool:
    return location.startswith("postgresql://")
RawSQL = Callable[..., list[tuple[Any, ...]]]

OWNER = "owner-1"


def user(n: int, *, first: str | None = None, raw: dict[str, object] | None = None) -> User:
    return User(
        id=make_id("toylms", "users", n),
        remote_id=str(n),
        first_name=first or f"First{n}",
        work_email=f"u{n}@example.org",
        status=UserStatus.ACTIVE,
        remote_created_at=dt.datetime(2024, 1, n % 28 + 1, tzinfo=dt.timezone.utc),
        remote_data=raw or {"/users": {"id": n}},
    )


@pytest.fixture
async def store(store: Store) -> AsyncIterator[Store]:
    """The engine's store (conftest), with the lock of connection "c" taken by OWNER."""
    assert await store.acquire_lock("c", OWNER, lease_s=60) is None
    yield store


async def run(store: Store, connection: str = "c") -> RunInfo:
    return await store.begin_run(connection, slug="toylms", owner=OWNER)


async def deleted(store: Store, info: RunInfo, model: ModelName = "users", **kwargs: Any) -> int:
    """Finish a complete read of `model`; how many records it marked deleted."""
    finish = await store.finish_model(info, model, complete=True, error=None, owner=OWNER, **kwargs)
    return finish.deleted


async def finish(store: Store, info: RunInfo) -> None:
    await store.finish_run(info, status="complete", owner=OWNER)


class TestSchema:
    async def test_new_store_is_at_the_current_version(self, store_location: str, raw_sql: RawSQL) -> None:
        """A new store is created at the current schema version (SQLite in WAL mode)."""
        async with open_store(store_location) as s:
            assert s.schema_version == SCHEMA_VERSION
            assert isinstance(s, StateStore)
        assert raw_sql("SELECT version FROM schema_version") == [(SCHEMA_VERSION,)]
        if not is_postgres(store_location):
            assert raw_sql("PRAGMA journal_mode") == [("wal",)]

    async def test_reopening_keeps_data_and_runs_no_migration_twice(self, store_location: str) -> None:
        """Data survives close/reopen; migrations already applied are not applied again."""
        async with open_store(store_location) as s:
            await s.acquire_lock("c", OWNER, lease_s=60)
            info = await run(s)
            await s.apply_batch(info, "users", [user(1)], owner=OWNER)
        async with open_store(store_location) as s:
            assert [u.remote_id async for u in s.list(User)] == ["1"]

    async def test_older_schema_is_migrated_in_place(self, store_location: str, raw_sql: RawSQL) -> None:
        """A version-1 store (before the guard's column) is brought to the current version, data kept."""
        async with open_store(store_location) as s:
            await s.acquire_lock("c", OWNER, lease_s=60)
            await s.apply_batch(await run(s), "users", [user(1)], owner=OWNER)
        raw_sql("ALTER TABLE run_models DROP COLUMN held", "UPDATE schema_version SET version = 1")
        async with open_store(store_location) as s:
            assert s.schema_version == SCHEMA_VERSION
            assert [u.remote_id async for u in s.list(User)] == ["1"]
            info = await run(s)
            await s.apply_batch(info, "users", [user(1)], owner=OWNER)
            assert await deleted(s, info) == 0  # run_models.held exists again
        assert raw_sql("SELECT version FROM schema_version") == [(SCHEMA_VERSION,)]

    async def test_newer_schema_is_refused(self, store_location: str, raw_sql: RawSQL) -> None:
        """A store written by a newer lmsconnect is refused with a StoreError, not misread."""
        async with open_store(store_location):
            pass
        raw_sql(f"UPDATE schema_version SET version = {SCHEMA_VERSION + 1}")
        with pytest.raises(StoreError, match="newer"):
            async with open_store(store_location):
                pass

    async def test_unusable_path_is_a_store_error(self, tmp_path: Path) -> None:
        """A path SQLite cannot open, or a file that is not a database, raises StoreError naming it."""
        with pytest.raises(StoreError, match="cannot open the store"):
            async with open_store(tmp_path / "missing-dir" / "s.db"):
                pass
        (tmp_path / "junk.db").write_bytes(b"not a database" * 100)
        with pytest.raises(StoreError, match=r"junk\.db"):
            async with open_store(tmp_path / "junk.db"):
                pass

    async def test_closed_store_says_how_to_open(self) -> None:
        """Using a store that is not open raises a StoreError that shows the right usage."""
        with pytest.raises(StoreError, match="open_store"):
            await SQLiteStore(":memory:").last_cursor()


class TestBatches:
    async def test_created_updated_unchanged(self, store: Store) -> None:
        """New ids are created, edited ones updated, identical ones unchanged: one change each at most."""
        info = await run(store)
        first = await store.apply_batch(info, "users", [user(1), user(2)], owner=OWNER)
        assert (first.created, first.updated, first.unchanged) == (2, 0, 0)
        await finish(store, info)
        info = await run(store)
        second = await store.apply_batch(info, "users", [user(1), user(2, first="Bea")], owner=OWNER)
        assert (second.created, second.updated, second.unchanged) == (0, 1, 1)
        kinds = [(c.kind.value, c.remote_id) async for c in store.changes()]
        assert kinds == [("created", "1"), ("created", "2"), ("updated", "2")]

    async def test_reapplying_a_batch_in_the_same_run_writes_nothing(self, store: Store) -> None:
        """Re-applying what a run already applied (a resumed run re-reads) records and writes nothing."""
        info = await run(store)
        await store.apply_batch(info, "users", [user(1), user(2)], owner=OWNER)
        again = await store.apply_batch(info, "users", [user(1), user(2)], owner=OWNER)
        assert again.writes == 0 and again.unchanged == 2
        assert await store.last_cursor() == 2

    async def test_duplicate_in_one_batch_compares_with_itself(self, store: Store) -> None:
        """A record read twice in one batch (a shifted page) is created once, then updated if it differs."""
        info = await run(store)
        result = await store.apply_batch(info, "users", [user(1), user(1), user(1, first="B")], owner=OWNER)
        assert (result.created, result.updated, result.unchanged) == (1, 1, 1)

    def test_fingerprint_ignores_own_fields_and_remote_data(self) -> None:
        """changed_at, remote_deleted_at and remote_data leave the fingerprint alone; a unified field not."""
        base = user(1)
        now = dt.datetime.now(dt.timezone.utc)
        assert fingerprint(base) == fingerprint(
            User(**{**_fields(base), "changed_at": now, "remote_deleted_at": now, "remote_data": {"x": 1}})
        )
        assert fingerprint(base) != fingerprint(user(1, first="Other"))

    async def test_list_returns_typed_records_with_dates(self, store: Store) -> None:
        """Records round-trip through the store: enums, aware datetimes, remote_data, changed_at."""
        info = await run(store)
        await store.apply_batch(
            info, "users", [user(3, raw={"/users": {"id": 3, "nested": [1, 2]}})], owner=OWNER
        )
        (got,) = [u async for u in store.list(User)]
        assert got == attrs_evolve(user(3), changed_at=got.changed_at)
        assert got.status is UserStatus.ACTIVE
        assert got.remote_data == {"/users": {"id": 3, "nested": [1, 2]}}
        assert got.changed_at is not None and got.changed_at.tzinfo is not None
        assert await store.get(User, user(3).id) == got
        assert await store.get("users", "usr_nothing") is None


class TestDeletions:
    async def test_complete_read_marks_unseen_deleted_once(self, store: Store) -> None:
        """A complete read marks what the run did not see deleted, once; later runs do not repeat it."""
        info = await run(store)
        await store.apply_batch(info, "users", [user(1), user(2), user(3)], owner=OWNER)
        assert await deleted(store, info) == 0
        await finish(store, info)
        info = await run(store)
        await store.apply_batch(info, "users", [user(1)], owner=OWNER)
        assert await deleted(store, info) == 2
        await finish(store, info)
        info = await run(store)
        await store.apply_batch(info, "users", [user(1)], owner=OWNER)
        assert await deleted(store, info) == 0
        log = [(c.kind.value, c.remote_id) async for c in store.changes()]
        assert log.count(("deleted", "2")) == 1 and log.count(("deleted", "3")) == 1
        live = [u.remote_id async for u in store.list(User, include_deleted=False)]
        assert live == ["1"]

    async def test_failed_read_marks_nothing(self, store: Store) -> None:
        """finish_model(complete=False) records the failure and deletes nothing."""
        info = await run(store)
        await store.apply_batch(info, "users", [user(1), user(2)], owner=OWNER)
        await finish(store, info)
        info = await run(store)
        await store.apply_batch(info, "users", [user(1)], owner=OWNER)
        outcome = await store.finish_model(info, "users", complete=False, error="500", owner=OWNER)
        assert outcome.deleted == 0
        assert [u.remote_deleted_at async for u in store.list(User)] == [None, None]

    async def test_models_and_connections_are_separate(self, store: Store) -> None:
        """A complete read of one model, or of one connection, never deletes another's records."""
        await store.acquire_lock("other", OWNER, lease_s=60)
        a, b = await run(store, "c"), await run(store, "other")
        await store.apply_batch(a, "users", [user(1)], owner=OWNER)
        await store.apply_batch(b, "users", [user(2)], owner=OWNER)
        await deleted(store, a, "users")
        await deleted(store, a, "courses")
        assert [u.remote_id async for u in store.list(User, connection="other")] == ["2"]
        assert [u.remote_deleted_at async for u in store.list(User)] == [None, None]


class TestDeletionGuard:
    async def _stored(self, store: Store, count: int) -> None:
        info = await run(store)
        await store.apply_batch(info, "users", [user(n) for n in range(1, count + 1)], owner=OWNER)
        await deleted(store, info)
        await finish(store, info)

    async def test_mass_deletion_is_held_whole(self, store: Store) -> None:
        """A read missing more than the guard allows marks none of the model deleted, logs no `deleted`,
        and says how many were held; the run's counts carry them."""
        await self._stored(store, 50)
        cursor = await store.last_cursor()
        info = await run(store)
        await store.apply_batch(info, "users", [user(1)], owner=OWNER)
        outcome = await store.finish_model(
            info, "users", complete=True, error=None, owner=OWNER, guard=DeletionGuard()
        )
        assert (outcome.deleted, outcome.held, outcome.stored) == (0, 49, 50)
        assert [c async for c in store.changes(since=cursor)] == []
        assert len([u async for u in store.list(User, include_deleted=False)]) == 50
        assert (await store.run_counts(info.run_id))["users"] == {"held": 49}

    async def test_confirmed_deletions_go_through(self, store: Store) -> None:
        """Without a guard (an operator confirmed), the same read marks the 49 deleted, once each."""
        await self._stored(store, 50)
        info = await run(store)
        await store.apply_batch(info, "users", [user(1)], owner=OWNER)
        assert await deleted(store, info, guard=None) == 49
        assert (await store.run_counts(info.run_id))["users"] == {"deleted": 49}

    @pytest.mark.parametrize(
        ("stored", "missing", "held"),
        [(50, 10, False), (50, 11, True), (200, 20, False), (200, 21, True), (5, 5, False)],
        ids=["floor-allows-10", "11-of-50", "10pc-of-200", "over-10pc-of-200", "tiny-tenant"],
    )
    async def test_threshold_is_ratio_and_floor(
        self, store: Store, stored: int, missing: int, held: bool
    ) -> None:
        """The default guard holds only when more than 10 % and more than 10 records would go."""
        await self._stored(store, stored)
        info = await run(store)
        await store.apply_batch(info, "users", [user(n) for n in range(missing + 1, stored + 1)], owner=OWNER)
        outcome = await store.finish_model(
            info, "users", complete=True, error=None, owner=OWNER, guard=DeletionGuard()
        )
        assert (outcome.held, outcome.deleted) == ((missing, 0) if held else (0, missing))

    def test_guard_settings_are_checked(self) -> None:
        """A ratio outside 0..1 or a negative floor is InvalidInput naming the setting."""
        with pytest.raises(InvalidInput, match="max_ratio"):
            DeletionGuard(max_ratio=10)
        with pytest.raises(InvalidInput, match="floor"):
            DeletionGuard(floor=-1)


class TestInputAndCorruption:
    async def test_unknown_model_is_invalid_input(self, store: Store) -> None:
        """list and get refuse an unknown model name with InvalidInput naming the valid ones."""
        with pytest.raises(InvalidInput, match="unknown model 'userz'") as caught:
            [u async for u in store.list("userz")]
        assert caught.value.field == "model"
        with pytest.raises(InvalidInput, match="unknown model"):
            await store.get("userz", "x")

    async def test_since_none_means_from_the_start(self, store: Store) -> None:
        """changes(since=None) delivers the whole log, as since=0 does; a bad cursor is InvalidInput."""
        info = await run(store)
        await store.apply_batch(info, "users", [user(1), user(2)], owner=OWNER)
        assert [c.cursor async for c in store.changes(since=None)] == [1, 2]
        for bad in (-1, "3", 2.5, True):
            with pytest.raises(InvalidInput, match="since"):
                [c async for c in store.changes(since=bad)]
        with pytest.raises(InvalidInput, match="limit"):
            [c async for c in store.changes(limit=-1)]

    @pytest.mark.parametrize(
        ("column", "value", "reads"),
        [
            ("data", "'{not json'", "list"),
            ("data", "'[1, 2]'", "get"),
            ("data", """'{"id": 5}'""", "list"),
            ("changed_at", "'yesterday'", "get"),
        ],
        ids=["bad-json", "json-array", "missing-fields", "bad-date"],
    )
    async def test_corrupt_record_is_a_store_error_naming_the_row(
        self, store: Store, raw_sql: RawSQL, store_location: str, column: str, value: str, reads: str
    ) -> None:
        """A record row that does not decode raises StoreError naming connection, model and id."""
        _typed_column(store_location, column)
        info = await run(store)
        await store.apply_batch(info, "users", [user(1), user(2)], owner=OWNER)
        raw_sql(f"UPDATE records SET {column} = {value} WHERE id = '{user(2).id}'")
        with pytest.raises(StoreError, match=rf"corrupt row.*model='users', id='{user(2).id}'"):
            if reads == "list":
                [u async for u in store.list(User)]
            else:
                await store.get(User, user(2).id)

    @pytest.mark.parametrize(
        ("column", "value"),
        [("model", "'gadgets'"), ("at", "'soon'"), ("run_id", "'x'")],
    )
    async def test_corrupt_change_is_a_store_error_naming_the_cursor(
        self, store: Store, raw_sql: RawSQL, store_location: str, column: str, value: str
    ) -> None:
        """A change-log row that does not decode raises StoreError naming its cursor."""
        _typed_column(store_location, column)
        info = await run(store)
        await store.apply_batch(info, "users", [user(1), user(2)], owner=OWNER)
        raw_sql(f"UPDATE changes SET {column} = {value} WHERE cursor = 2")
        with pytest.raises(StoreError, match="corrupt row in the store: changes row cursor=2"):
            [c async for c in store.changes()]


def _typed_column(location: str, column: str) -> None:
    if is_postgres(location) and column in ("changed_at", "at", "run_id"):
        pytest.skip("PostgreSQL's column type refuses the corrupt value when it is written")


class TestReadingBack:
    async def test_list_and_changes_stream_in_pages(self, store: Store) -> None:
        """More records than a page stream completely and in order; changes honour since and limit."""
        info = await run(store)
        await store.apply_batch(info, "users", [user(n) for n in range(1, 1203)], owner=OWNER)
        ids = [u.id async for u in store.list(User)]
        assert len(ids) == 1202 and ids == sorted(ids)
        cursors = [c.cursor async for c in store.changes(since=100)]
        assert cursors == list(range(101, 1203))
        assert [c.cursor async for c in store.changes(since=5, limit=3)] == [6, 7, 8]
        assert [c.cursor async for c in store.changes(since=1202)] == []
        assert await store.last_cursor() == 1202 and await store.last_cursor(connection="none") == 0

    async def test_change_carries_what_a_consumer_needs(self, store: Store) -> None:
        """Each change has cursor, kind, model, id, remote id, connection, time and run."""
        info = await run(store)
        await store.apply_batch(info, "users", [user(1)], owner=OWNER)
        (change,) = [c async for c in store.changes()]
        assert change.to_dict() | {"at": None} == {
            "cursor": 1,
            "kind": "created",
            "model": "users",
            "id": user(1).id,
            "remote_id": "1",
            "connection": "c",
            "at": None,
            "run_id": info.run_id,
        }
        assert change.at.tzinfo is not None


class TestLock:
    async def test_second_owner_sees_the_holder(self, store: Store) -> None:
        """A live lock is refused to another owner, who learns host, pid and lease."""
        holder = await store.acquire_lock("c", "owner-2", lease_s=60)
        assert holder is not None and holder.owner == OWNER and holder.pid == os.getpid()

    async def test_expired_lease_is_taken_over_and_fences_the_old_owner(self, store: Store) -> None:
        """After the lease expires another owner takes over; the old owner's writes then fail."""
        info = await run(store)
        assert await store.renew_lock("c", OWNER, lease_s=-1)
        assert await store.acquire_lock("c", "owner-2", lease_s=60) is None
        assert not await store.renew_lock("c", OWNER, lease_s=60)
        with pytest.raises(StoreError, match="lock"):
            await store.apply_batch(info, "users", [user(1)], owner=OWNER)
        assert await store.last_cursor() == 0

    async def test_lock_of_a_dead_process_is_taken_at_once(self, tmp_path: Path) -> None:
        """A lock left by a process that died on this host does not wait for its lease."""
        db = tmp_path / "s.db"
        async with open_store(db) as s:
            pass
        code = (
            "import asyncio, sys\n"
            "from lmsconnect._store import open_store\n"
            "async def main():\n"
            "    async with open_store(sys.argv[1]) as s:\n"
            "        assert await s.acquire_lock('c', 'dead', lease_s=3600) is None\n"
            "asyncio.run(main())\n"
        )
        await anyio.run_process([sys.executable, "-c", code, str(db)], check=True)
        async with open_store(db) as s:
            assert await s.acquire_lock("c", OWNER, lease_s=60) is None

    async def test_release_only_by_owner(self, store: Store) -> None:
        """Releasing someone else's lock does nothing."""
        await store.release_lock("c", "owner-2")
        assert await store.acquire_lock("c", "owner-2", lease_s=60) is not None
        await store.release_lock("c", OWNER)
        assert await store.acquire_lock("c", "owner-2", lease_s=60) is None


class TestRuns:
    async def test_open_run_is_resumed_with_its_complete_models(self, store: Store) -> None:
        """begin_run continues a run left 'running', knowing which models it had completed."""
        info = await run(store)
        await deleted(store, info)
        again = await run(store)
        assert again.resumed and again.run_id == info.run_id
        assert again.complete_models == frozenset({"users"})
        await finish(store, again)
        fresh = await run(store)
        assert not fresh.resumed and fresh.run_id == info.run_id + 1
        runs = await store.runs()
        assert runs[0]["attempts"] == 2 and runs[0]["status"] == "complete"


def _fields(record: User) -> dict[str, object]:
    import attrs

    return attrs.asdict(record, recurse=False)


def attrs_evolve(record: User, **changes: object) -> User:
    import attrs

    return attrs.evolve(record, **changes)
