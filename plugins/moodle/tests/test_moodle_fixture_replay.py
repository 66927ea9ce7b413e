"""Replay every request recorded from a real Moodle 5.0 against the simulator's fixture site.

The recordings (``shared/fixtures/moodle-5``) are replayed in recording order, so writes see the same
state they saw on the real site. Each simulator answer must have the recorded shape: the same JSON kinds,
the same keys (including which keys only some list items carry), the same nesting, and for exceptions
the same ``exception`` and ``errorcode``.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from lmsconnect_moodle.testing import MoodleSimulator

FIXTURES = Path(
    os.environ.get(
        "LMSCONNECT_MOODLE_FIXTURES",
        Path(__file__).resolve().parents[3].parent / "shared" / "fixtures" / "moodle-5",
    )
)


def _recording_order() -> list[str]:
    readme = (FIXTURES / "README.md").read_text()
    section = readme.split("## Fixtures", 1)[1]
    return re.findall(r"^- `([^`]+)\.json`", section, flags=re.MULTILINE)


pytestmark = pytest.mark.skipif(not (FIXTURES / "README.md").exists(), reason=f"no recordings at {FIXTURES}")

Schema = dict[str, Any]


def schema(value: Any) -> Schema:
    """The shape of a JSON value: its kind and, for objects and arrays, the shape of what they hold."""
    if value is None:
        return {"null": True}
    if isinstance(value, bool):
        return {"bool": True}
    if isinstance(value, (int, float)):
        return {"number": True}
    if isinstance(value, str):
        return {"string": True}
    if isinstance(value, list):
        merged: Schema | None = None
        for item in value:
            merged = schema(item) if merged is None else merge(merged, schema(item))
        return {"array": merged}
    assert isinstance(value, dict)
    return {"object": {key: (schema(item), False) for key, item in value.items()}}


def merge(a: Schema, b: Schema) -> Schema:
    out: Schema = {}
    for kind in a.keys() | b.keys():
        if kind not in a or kind not in b:
            out[kind] = a.get(kind, b.get(kind))
        elif kind == "object":
            keys: dict[str, tuple[Schema, bool]] = {}
            for key in a[kind].keys() | b[kind].keys():
                if key in a[kind] and key in b[kind]:
                    (sa, oa), (sb, ob) = a[kind][key], b[kind][key]
                    keys[key] = (merge(sa, sb), oa or ob)
                else:
                    keys[key] = ((a[kind].get(key) or b[kind][key])[0], True)
            out[kind] = keys
        elif kind == "array":
            ea, eb = a[kind], b[kind]
            out[kind] = ea if eb is None else eb if ea is None else merge(ea, eb)
        else:
            out[kind] = True
    return out


def differences(recorded: Schema, simulated: Schema, path: str = "$") -> list[str]:
    found: list[str] = []
    if recorded.keys() != simulated.keys():
        return [f"{path}: kinds {sorted(recorded)} recorded, {sorted(simulated)} simulated"]
    if "object" in recorded:
        ro, so = recorded["object"], simulated["object"]
        for key in sorted(ro.keys() - so.keys()):
            found.append(f"{path}.{key}: missing from the simulator")
        for key in sorted(so.keys() - ro.keys()):
            found.append(f"{path}.{key}: not in the recording")
        for key in sorted(ro.keys() & so.keys()):
            (rs, r_opt), (ss, s_opt) = ro[key], so[key]
            if r_opt != s_opt:
                found.append(
                    f"{path}.{key}: {'sometimes' if r_opt else 'always'} present recorded, "
                    f"{'sometimes' if s_opt else 'always'} simulated"
                )
            found += differences(rs, ss, f"{path}.{key}")
    if "array" in recorded:
        ra, sa = recorded["array"], simulated["array"]
        if (ra is None) != (sa is None):
            found.append(
                f"{path}[]: {'empty' if ra is None else 'non-empty'} recorded, "
                f"{'empty' if sa is None else 'non-empty'} simulated"
            )
        elif ra is not None and sa is not None:
            found += differences(ra, sa, f"{path}[]")
    return found


RECORDINGS = _recording_order() if (FIXTURES / "README.md").exists() else []


def test_every_recording_is_listed() -> None:
    """The README's recording order names every recorded response, so none escapes the replay."""
    on_disk = {
        p.name[: -len(".json")] for p in FIXTURES.glob("*.json") if not p.name.endswith(".request.json")
    }
    assert set(RECORDINGS) == on_disk


async def test_replay_matches_recorded_shapes() -> None:
    """Every recorded request, replayed in order, answers with the recorded shape and error codes."""
    failures: dict[str, list[str]] = {}
    # The recorded site's cron never ran between the writes and the reads after them.
    async with (
        MoodleSimulator(site="fixture", completion_cron=math.inf) as sim,
        aiohttp.ClientSession() as session,
    ):
        for name in RECORDINGS:
            request = json.loads((FIXTURES / f"{name}.request.json").read_text())
            recorded = json.loads((FIXTURES / f"{name}.json").read_text())
            query = {k: (sim.token if v == "<WSTOKEN>" else v) for k, v in request["query"].items()}
            sim.debug = name.endswith("_debug")
            async with session.request(
                request["method"],
                sim.url + request["path"],
                params=query,
                data=[tuple(p) for p in request["form"]],
            ) as response:
                assert response.status == request["response"]["http_status"], name
                assert response.content_type == request["response"]["content_type"], name
                simulated = json.loads(await response.text())
            problems = differences(schema(recorded), schema(simulated))
            if isinstance(recorded, dict) and "exception" in recorded:
                for key in ("exception", "errorcode"):
                    if not isinstance(simulated, dict) or simulated.get(key) != recorded[key]:
                        problems.append(f"{key}: {recorded[key]!r} recorded, {simulated!r} simulated")
            if problems:
                failures[name] = problems
    assert not failures, json.dumps(failures, indent=1)
    assert sim.calls == len(RECORDINGS)
