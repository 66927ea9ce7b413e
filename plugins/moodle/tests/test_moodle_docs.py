"""docs/moodle-setup.md lists, per model and action, exactly the functions the connector needs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from lmsconnect_moodle import CAPABILITIES, REQUIRED_FUNCTIONS

PAGE = Path(__file__).resolve().parents[3] / "docs" / "moodle-setup.md"


@pytest.mark.skipif(not PAGE.exists(), reason="docs not in this checkout")
def test_setup_page_lists_required_functions() -> None:
    """Each row of the functions table names the functions REQUIRED_FUNCTIONS gives for it."""
    rows = {}
    for line in PAGE.read_text().splitlines():
        match = re.match(r"^\| (\w+) \| (.*?) \| .* \|$", line)
        if match and match.group(1) in REQUIRED_FUNCTIONS:
            rows[match.group(1)] = set(re.findall(r"`(\w+)`", match.group(2)))
    assert rows.keys() == REQUIRED_FUNCTIONS.keys()
    for name, functions in REQUIRED_FUNCTIONS.items():
        assert rows[name] == set(functions), name


def test_every_supported_model_and_action_has_required_functions() -> None:
    """check() can judge every model and action the table supports."""
    supported: set[str] = {k for k, m in CAPABILITIES.models.items() if m.supported}
    supported |= {k for k, a in CAPABILITIES.actions.items() if a.supported}
    assert supported == set(REQUIRED_FUNCTIONS)
