"""What a read in progress can tell the sync engine beyond its records: how many to expect, calls made.

The sync engine puts a `ReadMeter` in the context of each model's read; the transport counts the calls
made in that context, and a connector announces what its vendor said about the size of the listing with
`announce_total` / `announce_pages` (both exported by `lmsconnect.plugin`). Outside a sync (a plain
``lms.list(...)``) there is no meter and both cost one context-variable lookup.
"""

from __future__ import annotations

import contextvars
import datetime as dt

import attrs

__all__ = [
    "ReadMeter",
    "announce_pages",
    "announce_total",
    "count_call",
    "current_meter",
    "set_meter",
    "total_wanted",
]


@attrs.define
class ReadMeter:
    """The live state of one model's read in a sync (mutable; the sync turns it into `SyncProgress`)."""

    model: str
    read: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    calls: int = 0
    total: int | None = None
    pages_done: int | None = None
    pages_total: int | None = None
    waiting_until: dt.datetime | None = None
    started: float = 0.0
    told: float = 0.0
    #: Someone watches the progress (a sync with a progress callback): a total is worth a call.
    watched: bool = False


_METER: contextvars.ContextVar[ReadMeter | None] = contextvars.ContextVar(
    "lmsconnect_read_meter", default=None
)


def current_meter() -> ReadMeter | None:
    return _METER.get()


def set_meter(meter: ReadMeter) -> None:
    """Make `meter` the current task's read (each model is read in a task of its own)."""
    _METER.set(meter)


def count_call() -> None:
    """One HTTP call is being sent for the read in progress (called by the transport)."""
    meter = _METER.get()
    if meter is not None:
        meter.calls += 1


def _count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0, not {value!r}")
    return value


def total_wanted(model: str) -> bool:
    """Whether the read of `model` in progress is watched (a sync showing progress), so that a total the
    vendor gives only through an extra call is worth that call.

    >>> if total_wanted("users"):
    ...     announce_total("users", int((await self._get("siteinfo"))["total_users"]))

    False outside a sync, in a sync without a progress callback, and for another model than the one
    being read. A total the read learns for free (a list read whole) is announced without asking.
    """
    meter = _METER.get()
    return meter is not None and meter.watched and meter.model == model


def announce_total(model: str, records: int) -> None:
    """Say how many records the read of `model` now in progress will yield, as the vendor announced it.

    >>> announce_total("users", int(siteinfo["total_users"]))  # inside read_users

    Call it only with a number the vendor gave (a count in the answer, or a list read whole whose length
    is known); never an estimate. The sync shows "read of total", a percentage and an ETA from it. A later
    call replaces the number. A call for another model than the one being read (a helper shared by two
    reads) is ignored, and so is every call outside a sync. `ValueError` for a negative or non-integer
    `records` (parse the vendor's value first, and skip the call when it is not a count).
    """
    total = _count("records", records)
    meter = _METER.get()
    if meter is not None and meter.model == model:
        meter.total = total


def announce_pages(model: str, done: int, total: int) -> None:
    """Say that `done` of `total` pages (or per-item calls) of the read of `model` are read, when the vendor
    announced how many pages there are but not how many records (or the read makes one call per course).

    >>> announce_pages("users", body["page"], body["pages"])  # after each page

    The sync shows "page 3 of 8" and an ETA from it. Same rules as `announce_total`.
    """
    done, total = _count("done", done), _count("total", total)
    meter = _METER.get()
    if meter is not None and meter.model == model:
        meter.pages_done, meter.pages_total = min(done, total), total
