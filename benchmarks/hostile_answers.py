"""What a hostile answer costs the client: peak memory on a giant body, CPU to scrub a giant secret.

    python benchmarks/hostile_answers.py --json
    python benchmarks/hostile_answers.py --body-mb 500 --key-mb 1

``body``: a server in a process of its own (its memory is not ours) streams ``--body-mb`` MB of a JSON
list, chunked, without Content-Length; the client reads it through `HttpClient.get_json`. The figures are
this process's peak RSS before and after, and what the read ended with (``InvalidRemoteResponse`` once the
body passes ``HttpOptions.max_response_bytes``, default 256 MiB, ``--cap-mb`` to change it; before that
setting existed the whole body was read and parsed).

``scrub``: a connection whose API key is ``--key-mb`` MB long meets an error whose message quotes a
URL and a body; the figure is the CPU seconds `scrub` spends on it (first call, so any per-secret
preparation is included).

The last line of ``--json`` output is one JSON object with ``body_mb``, ``body_outcome``,
``peak_rss_before_mb``, ``peak_rss_after_mb``, ``key_mb`` and ``scrub_cpu_s``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import SimulatorProcess, peak_rss_mb, print_result

SERVER = """
import asyncio, json, sys
from aiohttp import web
MB = int(sys.argv[1])
async def big(request):
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    chunk = (b'{"id": 1, "name": "' + b"x" * 1000 + b'"},') * 1024
    await response.write(b"[")
    sent = 0
    try:
        while sent < MB * 1024 * 1024:
            await response.write(chunk)
            sent += len(chunk)
        await response.write(b"{}]")
    except (ConnectionResetError, RuntimeError):
        pass
    return response
async def main():
    app = web.Application()
    app.router.add_get("/big", big)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    print(json.dumps({"config": {"base_url": f"http://127.0.0.1:{port}"}}), flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""


async def body(megabytes: int, cap_mb: int | None) -> dict[str, Any]:
    from lmsconnect import HttpOptions, LMSConnectError
    from lmsconnect.plugin import HttpClient

    before = peak_rss_mb()
    async with SimulatorProcess([sys.executable, "-c", SERVER, str(megabytes)]) as server:
        options = HttpOptions() if cap_mb is None else HttpOptions(max_response_bytes=cap_mb * 1024 * 1024)
        http = HttpClient(slug="bench", base_url=server.config["base_url"], options=options)
        try:
            got = await http.get_json("/big")
            outcome = f"read {len(got):,} items"
        except LMSConnectError as exc:
            outcome = f"{type(exc).__name__}: {exc}"
        finally:
            await http.aclose()
    return {
        "body_mb": megabytes,
        "body_outcome": outcome[:200],
        "peak_rss_before_mb": round(before, 1),
        "peak_rss_after_mb": round(peak_rss_mb(), 1),
    }


def scrub_cost(megabytes: float) -> dict[str, Any]:
    from lmsconnect.plugin import scrub

    key = "k3y-" + "0123456789abcdef" * int(megabytes * 1024 * 1024 / 16)
    message = f"GET https://lms.example/v1/users failed: vendor said: bad key {key[:40]}... (HTTP 401)"
    started = time.process_time()
    cleaned = scrub(message, [key])
    spent = time.process_time() - started
    assert cleaned == message  # the key is not in the message whole: nothing to replace
    started = time.process_time()
    assert "***" in scrub(f"echo={key}&x=1", [key])
    return {"key_mb": megabytes, "scrub_cpu_s": round(spent, 3),
            "scrub_found_cpu_s": round(time.process_time() - started, 3)}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--body-mb", type=int, default=500)
    parser.add_argument("--key-mb", type=float, default=1.0)
    parser.add_argument("--cap-mb", type=int, default=None, help="HttpOptions.max_response_bytes in MiB")
    parser.add_argument("--skip-scrub", action="store_true", help="only the body figure")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = asyncio.run(body(args.body_mb, args.cap_mb))
    if not args.skip_scrub:
        result.update(scrub_cost(args.key_mb))
    print_result(result, as_json=args.json, width=20)
    return 0


if __name__ == "__main__":
    sys.exit(main())
