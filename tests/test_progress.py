"""The plugin API a read uses to say how big it is (`lmsconnect.plugin.announce_total` and friends)."""

from __future__ import annotations

import contextvars
from collections.abc import Callable

import pytest

from lmsconnect._progress import ReadMeter, set_meter
from lmsconnect.plugin import announce_pages, announce_total, total_wanted


def in_a_read(body: Callable[[], None]) -> None:
    """Run `body` in a context of its own, as the sync runs each model's read in a task of its own (a
    meter set here must not reach the tests that run later in this thread)."""
    contextvars.Context().run(body)


class TestAnnounce:
    def test_outside_a_sync_nothing_happens(self) -> None:
        """A plain read (no sync) may announce freely: nothing listens, nothing fails."""
        announce_total("users", 10)
        announce_pages("users", 1, 3)
        assert total_wanted("users") is False

    def test_only_the_model_being_read_takes_it(self) -> None:
        """A helper shared by two reads announcing for the other model changes nothing."""
        meter = ReadMeter(model="courses", watched=True)

        def read() -> None:
            set_meter(meter)
            announce_total("users", 99)
            announce_pages("users", 1, 2)
            assert (meter.total, meter.pages_total) == (None, None)
            assert total_wanted("courses") and not total_wanted("users")
            announce_total("courses", 7)
            announce_pages("courses", 5, 4)  # more pages than announced: shown as all of them

        in_a_read(read)
        assert (meter.total, meter.pages_done, meter.pages_total) == (7, 4, 4)
        assert not total_wanted("courses")  # the read's context ended with it

    def test_an_unwatched_read_does_not_want_a_costly_total(self) -> None:
        """A sync without a progress callback does not want a total that costs a call."""

        def read() -> None:
            set_meter(ReadMeter(model="users"))
            assert total_wanted("users") is False

        in_a_read(read)

    @pytest.mark.parametrize("bad", [-1, 1.5, True, "3"], ids=["negative", "float", "bool", "text"])
    def test_a_count_that_is_not_one_is_refused(self, bad: object) -> None:
        """A vendor value passed unparsed is the connector's bug: ValueError, said at once."""
        with pytest.raises(ValueError, match="integer >= 0"):
            announce_total("users", bad)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="integer >= 0"):
            announce_pages("users", 1, bad)  # type: ignore[arg-type]
