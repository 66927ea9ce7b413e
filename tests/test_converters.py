"""structure_wire: a vendor payload becomes a wire record, or an InvalidRemoteResponse saying where."""

from __future__ import annotations

import attrs
import pytest

from lmsconnect import InvalidRemoteResponse
from lmsconnect.plugin import make_converter, structure_wire, wire_excerpt


@attrs.frozen
class Wire:
    id: int
    name: str


class TestStructureWire:
    def test_fitting_payload(self) -> None:
        """A payload of the documented shape becomes the wire record."""
        assert structure_wire(make_converter(), {"id": 1, "name": "a"}, Wire, where="GET /x") == Wire(
            id=1, name="a"
        )

    def test_names_endpoint_and_field_and_scrubs(self) -> None:
        """A wrong type names the endpoint and the field; the excerpt is scrubbed and trimmed."""
        raw = {"id": "1", "name": "SECRETKEY" * 1000}
        with pytest.raises(InvalidRemoteResponse) as info:
            structure_wire(
                make_converter(), raw, Wire, where="GET /x", connector="toy",
                scrub=lambda s: s.replace("SECRETKEY", "***"),
            )
        text = str(info.value)
        assert "GET /x" in text and "Wire.id" in text and "[toy]" in text
        assert "SECRETKEY" not in text and len(text) < 800

    @pytest.mark.parametrize("raw", [[1] * 1000, None, "text", 3], ids=["list", "null", "string", "number"])
    def test_not_an_object(self, raw: object) -> None:
        """Anything but an object where one is expected is an InvalidRemoteResponse saying what came."""
        with pytest.raises(InvalidRemoteResponse, match="expected an object"):
            structure_wire(make_converter(), raw, Wire, where="GET /x")

    def test_bool_is_strict(self) -> None:
        """A bool field takes true and false (not refused as a non-int), and nothing else."""

        @attrs.frozen
        class Flag:
            on: bool

        assert structure_wire(make_converter(), {"on": True}, Flag, where="GET /x") == Flag(on=True)
        with pytest.raises(InvalidRemoteResponse, match=r"Flag\.on"):
            structure_wire(make_converter(), {"on": "no"}, Flag, where="GET /x")

    def test_missing_key(self) -> None:
        """A dropped key names the field."""
        with pytest.raises(InvalidRemoteResponse, match="name"):
            structure_wire(make_converter(), {"id": 1}, Wire, where="GET /x")

    def test_excerpt_of_deep_value_is_bounded(self) -> None:
        """A deeply nested value gives a short excerpt, never a RecursionError."""
        deep: object = 1
        for _ in range(5000):
            deep = [deep]
        assert len(wire_excerpt(deep)) <= 160


@attrs.frozen
class Listing:
    items: list[Wire]


class TestLists:
    def test_list_of_records(self) -> None:
        """A list of records is structured item by item; a tuple is taken as a list."""
        raw = {"items": ({"id": 1, "name": "a"}, {"id": 2, "name": "b"})}
        assert structure_wire(make_converter(), raw, Listing, where="GET /x").items[1] == Wire(id=2, name="b")

    @pytest.mark.parametrize(
        "items",
        ["x" * 1_000_000, {"id": 1, "name": "a"}, [{"id": 1, "name": "a"}, *([0] * 1_000_000)]],
        ids=["megabyte-string", "object", "million-misfits"],
    )
    def test_a_list_stops_at_its_first_misfit(self, items: object) -> None:
        """A string or object where a list belongs, or a million bad items, is one error naming the first."""
        with pytest.raises(InvalidRemoteResponse) as info:
            structure_wire(make_converter(), {"items": items}, Listing, where="GET /x")
        message = str(info.value)
        assert "Listing.items" in message and "more)" not in message and "items[2]" not in message



class TestExtraKeys:
    def test_wire_converter_ignores_fields_it_does_not_read(self) -> None:
        """A vendor field added to an answer does not fail a wire read; our own input still refuses it."""
        raw = {"id": 1, "name": "a", "last_login": "yesterday"}
        wire = make_converter(forbid_extra_keys=False)
        assert structure_wire(wire, raw, Wire, where="GET /x") == Wire(id=1, name="a")
        with pytest.raises(InvalidRemoteResponse, match="last_login"):
            structure_wire(make_converter(), raw, Wire, where="GET /x")
