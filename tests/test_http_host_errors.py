"""A host name that does not resolve is a configuration mistake, reported at once, never retried.

(Host names IDNA cannot encode are among the malformed base URLs of test_http.py.)
"""

from __future__ import annotations

import socket
import time

import pytest

from lmsconnect import ConfigurationError
from lmsconnect.plugin import HttpClient

UNRESOLVABLE = "lmsconnect-test.invalid"  # RFC 6761: .invalid never resolves


def resolver_says_no_such_name() -> bool:
    try:
        socket.getaddrinfo(UNRESOLVABLE, 443)
    except socket.gaierror as exc:
        return exc.errno in {getattr(socket, n, None) for n in ("EAI_NONAME", "EAI_NODATA")}
    return False


class TestHostNames:
    async def test_unresolvable_host_fails_fast_as_configuration(self) -> None:
        """A name DNS says does not exist is a ConfigurationError naming the host, without retries."""
        if not resolver_says_no_such_name():
            pytest.skip("this machine's resolver cannot answer 'no such name'")
        http = HttpClient(slug="probe", base_url=f"https://{UNRESOLVABLE}/api")
        started = time.monotonic()
        try:
            with pytest.raises(ConfigurationError, match=f"host name '{UNRESOLVABLE}' does not resolve"):
                await http.request("GET", "/users")
        finally:
            await http.aclose()
        assert http.stats.retries == 0
        assert time.monotonic() - started < 5
