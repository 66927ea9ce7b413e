"""What only the PostgreSQL store has to prove (the contract suite in test_store.py and test_sync.py runs on
both engines): opening by URL, its schema, the optional extra, and a change feed that never skips or
doubles while many writers commit concurrently."""

from __future__ import annotations

import datetime as dt
import random
import subprocess
import sys

import anyio
import anyio.lowlevel
import pytest

import lmsconnect
from lmsconnect import ConfigurationError, InvalidInput, StoreError, User, UserStatus
from lmsconnect._models import make_id
from lmsconnect._store import PostgresStore, open_store


def user(n: int, *, first: str = "First") -> User:
    return User(
        id=make_id("toylms", "users", n),
        remote_id=str(n),
        first_name=f"{first}{n}",
        status=UserStatus.ACTIVE,
        remote_data={"/users": {"id": n}},
    )


class TestOpening:
    async def test_default_schema_and_separate_schemas(self, postgres_url: str) -> None:
        """Tables go to the schema "lmsconnect" by default; another schema is another store."""
        async with open_store(postgres_url) as default, open_store(postgres_url, schema="tenant_b") as other:
            assert isinstance(default, PostgresStore) and default.schema == "lmsconnect"
            assert other.schema == "tenant_b"
            assert await default.acquire_lock("c", "o", lease_s=60) is None
            run = await default.begin_run("c", slug="toylms", owner="o")
            await default.apply_batch(run, "users", [user(1)], owner="o")
            assert await other.last_cursor() == 0 and await default.last_cursor() >= 1
        async with open_store(f"{postgres_url}?schema=tenant_b") as again:
            assert again.schema == "tenant_b"

    async def test_bad_schema_and_url_are_refused_clearly(self, postgres_url: str) -> None:
        """A schema that is not a plain identifier is InvalidInput; schema= on a SQLite path too."""
        with pytest.raises(InvalidInput, match="schema"):
            async with open_store(postgres_url, schema='x"; DROP TABLE y; --'):
                pass
        with pytest.raises(InvalidInput, match="PostgreSQL stores only"):
            async with open_store(":memory:", schema="x"):
                pass

    async def test_unreachable_server_is_a_store_error_without_the_password(self) -> None:
        """A server that does not answer raises StoreError naming the URL, never its password."""
        with anyio.fail_after(30):
            with pytest.raises(StoreError, match="cannot open the PostgreSQL store") as caught:
                async with open_store("postgresql://app:s3cret-pw@127.0.0.1:1/app"):
                    pass
        assert "s3cret-pw" not in str(caught.value) and "app@127.0.0.1:1/app" in str(caught.value)
        assert "s3cret-pw" not in repr(PostgresStore("postgres://app:s3cret-pw@db/app"))

    def test_without_psycopg_lmsconnect_imports_and_names_the_extra(self) -> None:
        """Without psycopg installed, `import lmsconnect` works and a PostgreSQL URL says what to install."""
        code = (
            "import sys, asyncio\n"
            "sys.modules['psycopg'] = None; sys.modules['psycopg_pool'] = None  # as if not installed\n"
            "import lmsconnect\n"
            "async def main():\n"
            "    async with lmsconnect.open_store('postgresql://u@127.0.0.1/db'):\n"
            "        pass\n"
            "try:\n"
            "    asyncio.run(main())\n"
            "except lmsconnect.ConfigurationError as exc:\n"
            "    print(exc)\n"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        assert 'pip install "lmsconnect[postgres]"' in out.stdout, out.stderr
        assert issubclass(ConfigurationError, lmsconnect.LMSConnectError)


class TestConcurrentFeed:
    async def test_many_writers_and_a_consumer_see_every_change_exactly_once(
        self, store_location: str
    ) -> None:
        """8 connections write batches concurrently (each its own pool) while a consumer reads
        `changes(since=saved_cursor)` and saves the cursor after each change: it sees every committed
        change once, none skipped, none twice, and cursors only grow."""
        writers, batches = 8, 40
        done = anyio.Event()
        seen: list[tuple[int, str, str, str]] = []

        async def write(w: int) -> None:
            rng = random.Random(w)
            async with open_store(store_location) as store:
                key = f"w{w}"
                assert await store.acquire_lock(key, key, lease_s=120) is None
                run = await store.begin_run(key, slug="toylms", owner=key)
                next_id = 1
                for b in range(batches):
                    size = rng.choice((1, 2, 5, 20, 60))
                    fresh = [user(n) for n in range(next_id, next_id + size)]
                    next_id += size
                    # Some edits of earlier records too: `updated` changes in the same batches.
                    earlier = range(1, next_id - size)
                    edits = [user(n, first=f"E{b}-") for n in rng.sample(earlier, min(3, len(earlier)))]
                    await store.apply_batch(run, "users", fresh + edits, owner=key)
                    await anyio.sleep(rng.random() * 0.01)

        async def consume() -> None:
            async with open_store(store_location) as store:
                cursor = 0  # "saved" after each change, as a consumer does with its own effect
                while True:
                    finished = done.is_set()
                    read = 0
                    async for change in store.changes(since=cursor, limit=rng_limit.choice((7, 50, 500))):
                        seen.append((change.cursor, change.connection, change.id, change.kind.value))
                        cursor = change.cursor
                        read += 1
                    if finished and not read:
                        return  # the writers are done and the log is read to its end
                    await anyio.lowlevel.checkpoint()

        rng_limit = random.Random(0)
        with anyio.fail_after(120):
            async with anyio.create_task_group() as tg:
                tg.start_soon(consume)
                async with anyio.create_task_group() as producers:
                    for w in range(writers):
                        producers.start_soon(write, w)
                done.set()
        async with open_store(store_location) as store:
            log = [(c.cursor, c.connection, c.id, c.kind.value) async for c in store.changes()]
        cursors = [c[0] for c in seen]
        assert cursors == sorted(set(cursors)), "a change was delivered twice or out of order"
        missed = set(log) - set(seen)
        assert not missed, f"{len(missed)} committed changes never reached the consumer"
        assert seen == log
        assert len({c[1] for c in log}) == writers and len(log) > writers * batches


def test_change_at_is_the_databases_time(postgres_url: str) -> None:
    """Change times and leases come from the database's clock, not the worker's (hosts may disagree)."""

    async def main() -> None:
        async with open_store(postgres_url, schema="clock") as store:
            holder = await store.acquire_lock("c", "o", lease_s=30)
            assert holder is None
            other = await store.acquire_lock("c", "p", lease_s=30)
            assert other is not None
            lease = (other.lease_until - other.acquired_at).total_seconds()
            assert 29.9 < lease < 30.1
            assert abs((other.acquired_at - dt.datetime.now(dt.timezone.utc)).total_seconds()) < 60

    anyio.run(main)
