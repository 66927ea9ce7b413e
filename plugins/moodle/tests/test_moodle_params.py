"""Moodle's PHP-style array parameters: the one place that encodes them, and the simulator's decoder."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from lmsconnect_moodle import decode_params, encode_params

FIXTURES = Path(
    os.environ.get(
        "LMSCONNECT_MOODLE_FIXTURES",
        Path(__file__).resolve().parents[3].parent / "shared" / "fixtures" / "moodle-5",
    )
)


class TestEncode:
    @pytest.mark.parametrize(
        ("params", "expected"),
        [
            pytest.param({"courseid": 2}, [("courseid", "2")], id="scalar"),
            pytest.param({"values": [3, 4]}, [("values[0]", "3"), ("values[1]", "4")], id="list"),
            pytest.param(
                {"courses": [{"fullname": "Python", "visible": 0}]},
                [("courses[0][fullname]", "Python"), ("courses[0][visible]", "0")],
                id="list-of-structures",
            ),
            pytest.param(
                {"options": {"ids": [2, 5]}},
                [("options[ids][0]", "2"), ("options[ids][1]", "5")],
                id="structure-of-list",
            ),
            pytest.param(
                {"courses": [{"courseformatoptions": [{"name": "numsections", "value": 3}]}]},
                [
                    ("courses[0][courseformatoptions][0][name]", "numsections"),
                    ("courses[0][courseformatoptions][0][value]", "3"),
                ],
                id="deep",
            ),
            pytest.param(
                {"flag": True, "off": False, "none": None},
                [("flag", "1"), ("off", "0"), ("none", "")],
                id="booleans-and-none",
            ),
            pytest.param({"grade": 7.5}, [("grade", "7.5")], id="float"),
            pytest.param({"empty": [], "also": {}}, [], id="empty-containers-vanish"),
        ],
    )
    def test_encoding(self, params: dict[str, Any], expected: list[tuple[str, str]]) -> None:
        """Nested values become bracketed keys in order; scalars become Moodle's strings."""
        assert encode_params(params) == expected

    def test_matches_every_recorded_form(self) -> None:
        """The encoding of the recorded ``params`` equals the recorded ``form`` of every fixture."""
        requests = sorted(FIXTURES.glob("*.request.json"))
        if not requests:
            pytest.skip(f"no recordings at {FIXTURES}")
        for path in requests:
            request = json.loads(path.read_text())
            assert encode_params(request["params"]) == [tuple(p) for p in request["form"]], path.name

    def test_rejects_objects(self) -> None:
        """Only JSON-like values can be sent."""
        with pytest.raises(TypeError):
            encode_params({"x": object()})


class TestDecode:
    def test_round_trip(self) -> None:
        """Decoding gives PHP's arrays: dicts keyed by the bracketed names."""
        params = {"courses": [{"id": 6, "visible": 0}], "options": {"ids": [2]}}
        assert decode_params(encode_params(params)) == {
            "courses": {"0": {"id": "6", "visible": "0"}},
            "options": {"ids": {"0": "2"}},
        }

    def test_php_append_and_overwrite(self) -> None:
        """``a[]`` appends and a repeated key overwrites, as in PHP."""
        assert decode_params([("a[]", "x"), ("a[]", "y"), ("b", "1"), ("b", "2")]) == {
            "a": {"0": "x", "1": "y"},
            "b": "2",
        }
