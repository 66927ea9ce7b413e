"""The TalentLMS upsert benchmark runs end to end on a few courses and prints its JSON line last."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "benchmarks" / "talentlms_upsert.py"


def test_upsert_benchmark_counts_batches_polls_and_read_back(capsys: pytest.CaptureFixture[str]) -> None:
    """230 changed courses: 3 batch calls, polls, one read-back list; every course updated."""
    if not SCRIPT.exists():
        pytest.skip("the benchmarks directory is not in this checkout")
    spec = importlib.util.spec_from_file_location("talentlms_upsert", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    code = module.main(["--courses", "230", "--latency", "0", "--task-seconds", "0.05", "--json"])
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0
    assert result["batch_calls"] == 3 and result["read_back_calls"] == 1 and result["task_polls"] >= 3
    assert result["items"] == {"updated": 230}
    assert result["api_calls"] == 2 + 3 + result["task_polls"]
