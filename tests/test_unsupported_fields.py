"""connect(unsupported_fields=...): one action payload for every LMS, never dropped silently."""

from __future__ import annotations

import pytest
from lmsconnect_toylms.testing import ToySimulator

import lmsconnect
from lmsconnect import ItemStatus, NotSupported

PAYLOAD = {
    "items": [
        {"origin_id": "u-1", "course": {"title": "One", "duration": 90, "languages": ["en"]}},
        {"origin_id": "u-2", "course": {"title": "Two"}},
    ]
}


class TestUnsupportedFields:
    async def test_raise_is_the_default(self) -> None:
        """By default a field the table marks unsupported is NotSupported, before any call."""
        async with ToySimulator() as sim, lmsconnect.connect("toylms", **sim.connect_config) as lms:
            with pytest.raises(NotSupported, match=r"items\.course\.duration"):
                await lms.upsert_courses(PAYLOAD)
            assert lms.stats.calls == 0
            assert sim.calls == 0

    async def test_drop_ignores_them_and_says_so_per_item(self) -> None:
        """With 'drop' the action runs without those fields, and each affected item names them."""
        async with ToySimulator() as sim, lmsconnect.connect(
            "toylms", unsupported_fields="drop", **sim.connect_config
        ) as lms:
            result = await lms.upsert_courses(PAYLOAD)
        one, two = result.item("u-1"), result.item("u-2")
        assert one.status is ItemStatus.CREATED and two.status is ItemStatus.CREATED
        assert "ignored (unsupported by Toy LMS): items.course.duration, items.course.languages" in one.detail
        assert "ignored" not in two.detail
        created = [c for c in sim.courses.values() if c["ref"] == "u-1"]
        assert len(created) == 1 and created[0]["title"] == "One"

    def test_an_unknown_mode_is_a_configuration_error(self) -> None:
        """A typo in the mode fails at connect(), naming the allowed values."""
        with pytest.raises(lmsconnect.ConfigurationError, match="'raise' or 'drop'"):
            lmsconnect.connect(
                "toylms", unsupported_fields="ignore", base_url="http://127.0.0.1:9", token="t"
            )
