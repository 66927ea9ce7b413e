"""OpenTelemetry spans and metrics, when ``opentelemetry-api`` is installed (``lmsconnect[otel]``).

Without it, `ENABLED` is False and the callers skip every telemetry step behind one boolean test; the
helpers here then hand out a shared no-op span. With the API but no SDK configured, OpenTelemetry's own
no-op providers apply. The tracer and the instruments are looked up from the *global* providers and
re-created whenever a service (or a test) installs another one, so configuring OpenTelemetry after
lmsconnect was imported works.

What is emitted is listed, with units and attributes, in docs/observability.md. Nothing here ever puts a
secret, a query value or a raw remote id into a span name or an attribute: HTTP spans carry the *route
template* (`lmsconnect._http.HttpClient.route_of`), never the URL, and errors are described by their
stable code or class name, never their message.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any, Final

try:
    from opentelemetry import metrics as _metrics
    from opentelemetry import trace as _trace
except ImportError:  # the optional extra is not installed: every helper is a no-op
    _metrics = None  # type: ignore[assignment]
    _trace = None  # type: ignore[assignment]

__all__ = [
    "ENABLED",
    "action_span",
    "error_type",
    "fail",
    "http_span",
    "instruments",
    "read_span",
    "sync_span",
]

#: Whether opentelemetry-api is importable; callers test this before building any attribute.
ENABLED: Final = _trace is not None

SCOPE: Final = "lmsconnect"

# Attribute keys: OpenTelemetry's HTTP client conventions where they fit, `lmsconnect.*` for the rest.
CONNECTOR: Final = "lmsconnect.connector"
MODEL: Final = "lmsconnect.model"
ACTION: Final = "lmsconnect.action"
OPERATION: Final = "lmsconnect.operation"
KIND: Final = "lmsconnect.change.kind"
STATUS: Final = "lmsconnect.item.status"
REASON: Final = "lmsconnect.retry.reason"
BUDGET: Final = "lmsconnect.budget"
ERROR_TYPE: Final = "error.type"


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("lmsconnect")
    except Exception:  # an uninstalled checkout: the version is only a label
        return "0"


class _NoSpan:
    """The span the helpers yield when telemetry is off: accepts everything, records nothing."""

    def set_attribute(self, key: str, value: Any) -> None:
        pass

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        pass

    def is_recording(self) -> bool:
        return False


NO_SPAN: Final = _NoSpan()


class Instruments:
    """The metric instruments of one meter provider (names, units and attributes: docs/observability.md)."""

    def __init__(self, meter: Any) -> None:
        counter, histogram = meter.create_counter, meter.create_histogram
        self.http_calls = counter(
            "lmsconnect.http.calls", unit="{call}",
            description="HTTP requests sent to a vendor (each attempt; a redirect followed within the "
            "connection's origin is part of its attempt)",
        )
        self.http_duration = histogram(
            "lmsconnect.http.duration", unit="s",
            description="Time from sending an HTTP request to having read its whole answer",
        )
        self.http_retries = counter(
            "lmsconnect.http.retries", unit="{retry}",
            description="Requests sent again after a failure (5xx, 429, connection error, transient vendor "
            "error)",
        )
        self.http_rate_limited = counter(
            "lmsconnect.http.rate_limited", unit="{response}",
            description="HTTP 429 answers received",
        )
        self.budget_waits = counter(
            "lmsconnect.budget.waits", unit="{wait}",
            description="Calls held by the connection's own rate budget for at least 10 ms",
        )
        self.budget_wait_time = counter(
            "lmsconnect.budget.wait_time", unit="s",
            description="Seconds calls spent held by the connection's own rate budget",
        )
        self.records_read = counter(
            "lmsconnect.sync.records_read", unit="{record}",
            description="Records read from the vendor by syncs",
        )
        self.changes = counter(
            "lmsconnect.sync.changes", unit="{change}",
            description="Changes a sync wrote to its change log (created, updated, deleted)",
        )
        self.action_items = counter(
            "lmsconnect.action.items", unit="{item}",
            description="Items of actions, by outcome (created, updated, unchanged, accepted, failed)",
        )


_tracer_for: Any = None
_tracer: Any = None
_instruments_for: Any = None
_instruments: Instruments | None = None


def tracer() -> Any:
    """lmsconnect's tracer from the current global tracer provider."""
    global _tracer_for, _tracer
    provider = _trace.get_tracer_provider()
    if provider is not _tracer_for:
        _tracer, _tracer_for = provider.get_tracer(SCOPE, _version()), provider
    return _tracer


def instruments() -> Instruments:
    """The instruments of the current global meter provider (only call when `ENABLED`)."""
    global _instruments_for, _instruments
    provider = _metrics.get_meter_provider()
    if provider is not _instruments_for or _instruments is None:
        _instruments, _instruments_for = Instruments(provider.get_meter(SCOPE, _version())), provider
    return _instruments


_Scope = contextlib.AbstractContextManager[Any]


@contextlib.contextmanager
def _span(name: str, attributes: Mapping[str, Any], *, client: bool = False) -> Iterator[Any]:
    if _trace is None:
        yield NO_SPAN
        return
    kind = _trace.SpanKind.CLIENT if client else _trace.SpanKind.INTERNAL
    # Exceptions are not recorded as events: their messages are for people, not for telemetry; `fail`
    # sets the stable code instead.
    with tracer().start_as_current_span(
        name, kind=kind, attributes=attributes, record_exception=False, set_status_on_exception=False
    ) as span:
        try:
            yield span
        except BaseException as exc:
            fail(span, exc)
            raise


def error_type(error: BaseException) -> str:
    """The ``error.type`` of `error`: an LMSConnectError's stable code, else the exception's class name."""
    code = getattr(error, "code", None)
    return code if isinstance(code, str) and code else type(error).__name__


def fail(span: Any, error: BaseException | str) -> None:
    """Mark `span` failed with ``error.type``: an LMSConnectError's code, an HTTP status or a class name."""
    if _trace is None or not span.is_recording():
        return
    kind = error if isinstance(error, str) else error_type(error)
    span.set_attribute(ERROR_TYPE, kind)
    span.set_status(_trace.Status(_trace.StatusCode.ERROR, kind))


def http_span(method: str, template: str, attributes: Mapping[str, Any]) -> _Scope:
    """One HTTP request (one attempt): a CLIENT span named ``{method} {route template}``."""
    return _span(f"{method} {template}", attributes, client=True)


def sync_span(slug: str) -> _Scope:
    """One `lmsconnect.sync` run."""
    return _span(f"sync {slug}", {CONNECTOR: slug})


def read_span(slug: str, model: str) -> _Scope:
    """One model's read within a sync."""
    return _span(f"read {model}", {CONNECTOR: slug, MODEL: model})


def action_span(slug: str, action: str) -> _Scope:
    """One unified action."""
    return _span(f"action {action}", {CONNECTOR: slug, ACTION: action})
