"""Rate budgets shared across processes, counted in PostgreSQL.

Two processes that use one TalentLMS tenant each believe they own its 200 calls per 5 s, and together
they get 429s. `PostgresBudgets` counts every process's calls in one place:

>>> async with lmsconnect.PostgresBudgets("postgresql://lms@db/app") as budgets:
...     async with lmsconnect.connect("talentlms", budget=budgets.tenant("acme"), **config) as lms:
...         ...

How: one row per admitted call in ``budget_calls (key, at)`` and one pause per key in
``budget_pauses``. Admission is one call of the SQL function ``budget_admit(key, limits, spans)``, which
takes the key's transaction-level advisory lock (admissions of one key take turns; other keys do not
wait), reads the database clock (``clock_timestamp()``: the clocks of worker hosts do not matter), finds
for each window the ``limit``-th most recent call within its span, and either records the call or answers
how long to wait. A window is an exact sliding log, as in this process (`RateWindow`); rows older than
the longest span are deleted as calls are admitted. A 429 seen by any process pauses the key for all of
them (`pause`). Nothing secret is stored: keys are the service's names for its tenants.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final

from ._errors import ConfigurationError
from ._http import SharedBudget
from ._store import StoreError
from ._store_postgres import _EXTRA_HINT, _IDENTIFIER, DEFAULT_SCHEMA, _split_url, is_postgres_url

if TYPE_CHECKING:
    import psycopg_pool

__all__ = ["PostgresBudgets", "quoted_schema"]

# One constant key serialises the schema setup of processes that start at once (CREATE ... IF NOT
# EXISTS is not safe against a concurrent CREATE of the same object).
_SETUP_LOCK: Final = 0x6C6D73_62756467  # "lms" "budg"

_SETUP: Final = (
    "CREATE SCHEMA IF NOT EXISTS {s}",
    "CREATE TABLE IF NOT EXISTS {s}.budget_calls (key text NOT NULL, at double precision NOT NULL)",
    "CREATE INDEX IF NOT EXISTS budget_calls_by_key ON {s}.budget_calls (key, at)",
    "CREATE TABLE IF NOT EXISTS {s}.budget_pauses (key text PRIMARY KEY, until double precision NOT NULL)",
    """CREATE OR REPLACE FUNCTION {s}.budget_admit(k text, limits integer[], spans double precision[])
    RETURNS double precision LANGUAGE plpgsql AS $fn$
    DECLARE
        now_s double precision := extract(epoch FROM clock_timestamp());
        wait double precision := 0;
        longest double precision := 0;
        nth double precision;
        paused double precision;
    BEGIN
        PERFORM pg_advisory_xact_lock(hashtextextended('lmsconnect.budget:' || k, 0));
        now_s := extract(epoch FROM clock_timestamp());
        SELECT until INTO paused FROM {s}.budget_pauses WHERE key = k;
        IF paused IS NOT NULL AND paused > now_s THEN
            wait := paused - now_s;
        END IF;
        FOR i IN 1 .. coalesce(array_length(limits, 1), 0) LOOP
            longest := greatest(longest, spans[i]);
            SELECT at INTO nth FROM {s}.budget_calls
                WHERE key = k AND at > now_s - spans[i]
                ORDER BY at DESC OFFSET limits[i] - 1 LIMIT 1;
            IF FOUND THEN
                wait := greatest(wait, nth + spans[i] - now_s);
            END IF;
        END LOOP;
        IF wait <= 0 THEN
            DELETE FROM {s}.budget_calls WHERE key = k AND at <= now_s - longest;
            INSERT INTO {s}.budget_calls (key, at) VALUES (k, now_s);
            RETURN 0;
        END IF;
        RETURN wait;
    END
    $fn$""",
)


def quoted_schema(schema: str) -> str:
    if not _IDENTIFIER.fullmatch(schema):
        raise ConfigurationError(
            f"schema {schema!r} is not a plain identifier (letters, digits, _; at most 63 characters)"
        )
    return f'"{schema}"'


class PostgresBudgets:
    """A `BudgetBackend` in PostgreSQL: hand `tenant(key)` to ``connect(..., budget=...)``.

    ``url`` is a ``postgresql://`` URL (its ``?schema=`` names the schema, default ``lmsconnect``: the
    state store's); the tables and the function are created on `open` if missing. One instance (one
    small pool, ``max_connections``) serves every tenant of a process.
    """

    def __init__(self, url: str, *, schema: str | None = None, max_connections: int = 4) -> None:
        if not is_postgres_url(url):
            raise ConfigurationError("PostgresBudgets needs a postgresql:// URL")
        self._conninfo, from_url, self._shown = _split_url(url)
        self.schema = schema or from_url or DEFAULT_SCHEMA
        self._s = quoted_schema(self.schema)
        self._max = max_connections
        self._pool: psycopg_pool.AsyncConnectionPool[Any] | None = None

    def tenant(self, key: str) -> SharedBudget:
        """The budget of one tenant (name it after the vendor account, e.g. the connection key)."""
        return SharedBudget(self, key)

    async def open(self) -> None:
        if self._pool is not None:
            return
        try:
            import psycopg
            import psycopg_pool
        except ImportError:  # pragma: no cover - depends on the installation
            raise ConfigurationError(f"PostgresBudgets needs psycopg 3. {_EXTRA_HINT}") from None
        try:
            # One plain connection first: an unreachable server or a wrong password fails here with the
            # server's own message, not as a pool timeout.
            async with (
                await psycopg.AsyncConnection.connect(
                    self._conninfo, autocommit=True, prepare_threshold=None, connect_timeout=10
                ) as conn,
                conn.transaction(),
            ):
                await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SETUP_LOCK,))
                for statement in _SETUP:
                    await conn.execute(statement.format(s=self._s).encode())
        except psycopg.Error as exc:
            raise StoreError(
                f"cannot open the shared rate budgets in {self._shown!r} (schema {self.schema!r}): "
                f"{type(exc).__name__}: {str(exc).strip()}"
            ) from None
        pool = psycopg_pool.AsyncConnectionPool(
            self._conninfo,
            min_size=1,
            max_size=self._max,
            open=False,
            kwargs={"autocommit": True, "prepare_threshold": None},
        )
        try:
            await pool.open(wait=True, timeout=30)
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            await pool.close()
            raise StoreError(f"cannot open a connection pool to {self._shown!r}: {exc}") from None
        self._pool = pool

    async def aclose(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    async def __aenter__(self) -> PostgresBudgets:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def _require(self) -> psycopg_pool.AsyncConnectionPool[Any]:
        if self._pool is None:
            raise ConfigurationError("PostgresBudgets is not open: use `async with PostgresBudgets(url):`")
        return self._pool

    async def admit(self, key: str, windows: Sequence[tuple[int, float]]) -> float:
        async with self._require().connection() as conn:
            cur = await conn.execute(
                f"SELECT {self._s}.budget_admit(%s, %s, %s)".encode(),
                (key, [int(limit) for limit, _ in windows], [float(span) for _, span in windows]),
            )
            row = await cur.fetchone()
        return float(row[0]) if row else 0.0

    async def pause(self, key: str, seconds: float) -> None:
        async with self._require().connection() as conn:
            await conn.execute(
                f"""INSERT INTO {self._s}.budget_pauses AS p (key, until)
                VALUES (%s, extract(epoch FROM clock_timestamp()) + %s)
                ON CONFLICT (key) DO UPDATE SET until = greatest(p.until, excluded.until)""".encode(),
                (key, float(seconds)),
            )

    async def calls(self, key: str, *, within_s: float) -> int:
        """Calls admitted for `key` in the last `within_s` seconds (up to the longest window's span)."""
        async with self._require().connection() as conn:
            cur = await conn.execute(
                f"""SELECT count(*) FROM {self._s}.budget_calls
                WHERE key = %s AND at > extract(epoch FROM clock_timestamp()) - %s""".encode(),
                (key, float(within_s)),
            )
            row = await cur.fetchone()
        return int(row[0]) if row else 0
