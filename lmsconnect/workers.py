"""Syncs and actions as procrastinate jobs over PostgreSQL (``pip install "lmsconnect[workers]"``).

>>> from lmsconnect.workers import Workers
>>> workers = Workers("postgresql://lms@db/app", resolve=resolve)   # resolve(key) -> (slug, config)

See docs/scale.md ("running at scale") and `lmsconnect._workers` for the tasks, retries and health.
"""

from __future__ import annotations

from ._workers import (
    ACTIONS,
    ActionOutcome,
    AlreadyQueued,
    ConnectionHealth,
    Resolver,
    Workers,
    connection_health,
    env_resolver,
)

__all__ = [
    "ACTIONS",
    "ActionOutcome",
    "AlreadyQueued",
    "ConnectionHealth",
    "Resolver",
    "Workers",
    "connection_health",
    "env_resolver",
]
