"""Core test configuration.

The hello-world connector in docs/examples/toylms is not pip-installed in the test environment (so it does not
appear among the real connectors in `lmsconnect plugins` or the generated docs); it is put on sys.path and
registered in code here.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import lmsconnect
from lmsconnect.testing import WitnessServer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "docs" / "examples" / "toylms"))

from lmsconnect_toylms import ToyConnector

lmsconnect.register_connector(ToyConnector, replace=True)


@pytest.fixture
async def recorder() -> AsyncIterator[WitnessServer]:
    """A `WitnessServer` answering ``{}`` on its own 127.0.0.1 port (a probe's vendor, or a host that must
    receive nothing)."""
    async with WitnessServer(answer={}) as witness:
        yield witness
