"""The front door: `connect` and `available_connectors`."""

from __future__ import annotations

from typing import Any, Literal

from ._connector import Connector
from ._errors import ConfigurationError
from ._http import HttpOptions, SharedBudget
from ._registry import ConnectorInfo, registry

__all__ = ["available_connectors", "connect", "register_connector"]


def connect(
    slug: str,
    *,
    allow_destructive: bool = True,
    http: HttpOptions | None = None,
    unsupported_fields: Literal["raise", "drop"] = "raise",
    budget: SharedBudget | None = None,
    **config: Any,
) -> Connector[Any]:
    """A connector for `slug`, configured but not yet open; use it as an async context manager.

    >>> async with lmsconnect.connect("talentlms", domain="acme.talentlms.com", api_key=key) as lms:
    ...     print(lms.capabilities.actions["deactivate_course"].note)

    ``allow_destructive=False`` makes actions the table flags destructive raise
    `DestructiveActionRefused` instead of running. ``budget=budgets.tenant(key)`` (a `SharedBudget`, e.g.
    from `PostgresBudgets`) counts the vendor's rate limits with every other process using that tenant,
    instead of in this process alone. ``unsupported_fields="drop"`` lets one action payload
    serve every LMS: input fields this connector's table marks unsupported (``course_url`` on TalentLMS)
    are ignored and each result item says which, instead of `NotSupported`. Raises
    `ConfigurationError` naming any unknown, missing or ill-typed config field (never echoing a secret).
    """
    cls = registry.get(slug)
    if budget is not None and not isinstance(budget, SharedBudget):
        raise ConfigurationError(
            f"budget must be a SharedBudget (e.g. PostgresBudgets(url).tenant(key)), not "
            f"{type(budget).__name__}",
            connector=slug,
        )
    connector = cls.from_config(
        allow_destructive=allow_destructive, http=http, unsupported_fields=unsupported_fields, **config
    )
    connector.shared_budget = budget
    return connector


def available_connectors() -> tuple[ConnectorInfo, ...]:
    """Every installed connector (and every broken plugin, with the reason), sorted by slug."""
    return registry.infos()


def register_connector(cls: type[Connector[Any]], *, replace: bool = False) -> None:
    """Register a connector class in code (tests, private connectors), without an entry point."""
    registry.register(cls, replace=replace)
