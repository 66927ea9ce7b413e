"""A worked example of docs/scale.md: a service with one TalentLMS connection per customer.

Runs as it is, offline: two simulated customers (TalentLMS simulators on 127.0.0.1) and a PostgreSQL
database given as $LMSCONNECT_DB (a postgresql:// URL; a schema of its own is used), or, when that is not
set, a throwaway server started for the run (PostgreSQL server binaries needed).

    python docs/examples/scale_service.py

In a real service the three roles below are three kinds of process (web, worker, operator), and the
credentials come from a secrets manager instead of the simulators.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import uuid
from collections.abc import Mapping
from typing import Any

from lmsconnect_talentlms.testing import TalentLMSSimulator

from lmsconnect.workers import Workers

CUSTOMERS = ("acme", "globex")


async def main(db: str) -> None:
    async with TalentLMSSimulator(seed=1) as acme_lms, TalentLMSSimulator(seed=2) as globex_lms:
        simulated = {"acme": acme_lms, "globex": globex_lms}

        # The service's resolver: connection key -> (connector slug, connect() config). The only place
        # credentials come from; lmsconnect never stores them (jobs carry the key alone).
        def resolve(key: str) -> tuple[str, Mapping[str, Any]]:
            return "talentlms", simulated[key].connect_config

        async with Workers(db, resolve=resolve) as workers:
            # Operator / onboarding: each customer synced every 6 hours (first: now).
            for key in CUSTOMERS:
                await workers.schedule(key, every=dt.timedelta(hours=6))

            # The periodic fan-out (run by the workers every minute) defers the due syncs; here by hand.
            print("syncs deferred:", await workers.fan_out())

            # Web process: enrol a learner without waiting for TalentLMS in the request.
            learner = next(u for u in acme_lms.users if acme_lms.role_for(u) == "learner")
            course = next(c for c in acme_lms.courses if acme_lms.enrollment(learner.id, c.id) is None)
            job = await workers.defer_action(
                "enroll_user",
                "acme",
                user_id=f"remote:{learner.id}",
                course_revision_id=f"remote:{course.id}",
            )
            print("enrolment queued as job", job)

            # Worker process: here until the queue is empty (`lmsconnect worker` runs until SIGTERM).
            await workers.run_worker(concurrency=10, wait=False)

            outcome = await workers.action_outcome(job, wait_s=10)
            print("enrolment:", outcome.status, [item["status"] for item in (outcome.result or {})["items"]])
            for health in await workers.health():
                print(f"{health.key}: {health.last_outcome}, changes {dict(health.last_counts or {})}, "
                      f"next due {health.next_due:%H:%M}")  # fmt: skip
            users = [u async for u in workers.store.list("users", connection="acme")]
            print("acme users in the store:", len(users))


def run() -> None:
    db = os.environ.get("LMSCONNECT_DB")
    if db:
        asyncio.run(main(f"{db}{'&' if '?' in db else '?'}schema=example_{uuid.uuid4().hex[:8]}"))
        return
    from lmsconnect.testing._postgres import TemporaryPostgres

    with TemporaryPostgres() as url:
        asyncio.run(main(url))


if __name__ == "__main__":
    run()
