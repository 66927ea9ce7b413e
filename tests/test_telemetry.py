"""OpenTelemetry: spans and metrics of syncs, model reads, HTTP calls and actions, against the simulators.

The SDK is installed as the global providers (the `otel` fixture in conftest.py: an in-memory span
exporter and metric reader), as a service would configure it; lmsconnect itself only uses the API.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import attrs
import pytest

import lmsconnect
from lmsconnect._http import HttpClient, route_template
from lmsconnect.testing import simulator

SLUGS = ["talentlms", "moodle", "360learning"]
SIZE = {"users": 12, "courses": 3, "enrollments": 20}
ROOT = Path(__file__).resolve().parents[1]


def metric_points(reader: Any) -> dict[str, list[Any]]:
    """Every data point the reader holds, by metric name."""
    points: dict[str, list[Any]] = {}
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                points.setdefault(metric.name, []).extend(metric.data.data_points)
    return points


def total(points: dict[str, list[Any]], name: str, **where: Any) -> float:
    """The sum of a counter's points (a histogram's: their count) whose attributes include `where`."""
    found = 0.0
    for point in points.get(name, []):
        if all(point.attributes.get(k) == v for k, v in where.items()):
            found += point.count if hasattr(point, "bucket_counts") else point.value
    return found


def strings_of(spans: Iterable[Any], points: dict[str, list[Any]]) -> list[str]:
    """Span names and every string attribute value of every span and metric point."""
    out: list[str] = []
    for span in spans:
        out.append(span.name)
        out += [v for v in span.attributes.values() if isinstance(v, str)]
        out += [x for v in span.attributes.values() if isinstance(v, tuple) for x in v if isinstance(x, str)]
        out.append(span.status.description or "")
    for metric in points.values():
        for point in metric:
            out += [v for v in point.attributes.values() if isinstance(v, str)]
    return out


def assert_nothing_leaks(texts: list[str], secrets: set[str], remote_ids: set[str]) -> None:
    """No secret anywhere in the texts, and no remote id as a word of one."""
    for text in texts:
        for secret in secrets:
            assert secret not in text, f"a secret in telemetry: {text!r}"
        words = set(re.split(r"[/:{},?&=\s]+", text))
        assert not words & remote_ids, f"raw remote ids {words & remote_ids} in {text!r}"


async def remote_ids_of(lms: Any) -> set[str]:
    ids: set[str] = set()
    for model, support in lms.capabilities.models.items():
        if support.supported:
            async for record in lms.list(model):
                ids.update(record.remote_id.split(":"))
    return {i for i in ids if i}


def secrets_of(sim: Any, lms: Any) -> set[str]:
    config = sim.connect_config
    given = {str(config[k]) for k in ("api_key", "token", "client_secret", "client_id") if k in config}
    return given | set(lms.http._secrets)  # and what the connection learnt (360Learning's access tokens)


@pytest.mark.parametrize("slug", SLUGS)
async def test_sync_spans_and_metrics(slug: str, otel: tuple[Any, Any], tmp_path: Path) -> None:
    """A sync is one span, each model read its child, each HTTP call a child of a read; the metrics add up
    to the report and to ``lms.stats``; no secret and no remote id in any name or attribute."""
    exporter, reader = otel
    async with simulator(slug, **SIZE) as sim, lmsconnect.connect(slug, **sim.connect_config) as lms:
        async with lmsconnect.open_store(str(tmp_path / "state.db")) as store:
            report = await lmsconnect.sync(lms, store)
        spans = exporter.get_finished_spans()
        points = metric_points(reader)
        stats = attrs.evolve(lms.stats)  # before the listing below adds calls
        secrets = secrets_of(sim, lms)
        remote_ids = await remote_ids_of(lms)
        if slug == "360learning":
            remote_ids.add(sim.connect_config["integration_id"])
    assert report.ok

    [root] = [s for s in spans if s.name == f"sync {slug}"]
    assert root.parent is None
    assert root.attributes["lmsconnect.connector"] == slug
    assert root.attributes["lmsconnect.sync.ok"] is True
    assert root.attributes["lmsconnect.sync.calls"] == report.calls == stats.calls
    for kind, count in report.totals.items():
        assert root.attributes[f"lmsconnect.sync.{kind}"] == count

    reads = {s.attributes["lmsconnect.model"]: s for s in spans if s.name.startswith("read ")}
    assert set(reads) == set(report.models)
    for model, span in reads.items():
        assert span.parent.span_id == root.context.span_id
        assert span.attributes["lmsconnect.model.read"] == report.models[model].read
        assert span.attributes["lmsconnect.model.created"] == report.models[model].created
        assert span.attributes["lmsconnect.model.status"] == "complete"

    calls = [s for s in spans if s.kind.name == "CLIENT"]
    assert len(calls) == stats.calls
    read_ids = {s.context.span_id: model for model, s in reads.items()}
    # Every HTTP call happened within one model's read, and every model's read made calls, except one
    # that shares a call made in another's read (TalentLMS lists /v1/courses once for courses and
    # revisions read together).
    assert all(c.parent is not None and c.parent.span_id in read_ids for c in calls)
    callers = {read_ids[c.parent.span_id] for c in calls}
    sharing: set[str] = {"course_revisions", "courses"} if slug == "talentlms" else set()
    assert set(read_ids.values()) - callers <= sharing
    for call in calls:
        attributes = call.attributes
        assert attributes["lmsconnect.connector"] == slug
        assert attributes["server.address"] == "127.0.0.1"
        assert attributes["http.response.status_code"] == 200
        assert attributes["url.template"].startswith("/")
        target = attributes.get("lmsconnect.operation", attributes["url.template"])
        assert call.name == f"{attributes['http.request.method']} {target}"
    if slug == "moodle":
        assert all(re.fullmatch(r"POST (core|tool|local|report)\w+", c.name) for c in calls)
    if slug == "talentlms":
        assert "GET /api/v1/users/page_size:{page_size},page_number:{page_number}" in {c.name for c in calls}

    assert total(points, "lmsconnect.http.calls", **{"lmsconnect.connector": slug}) == stats.calls
    assert total(points, "lmsconnect.http.duration") == stats.calls
    assert total(points, "lmsconnect.http.retries") == stats.retries
    assert total(points, "lmsconnect.http.rate_limited") == stats.rejected
    assert total(points, "lmsconnect.budget.waits") == stats.waits
    for model, outcome in report.models.items():
        assert total(points, "lmsconnect.sync.records_read", **{"lmsconnect.model": model}) == outcome.read
        for kind in ("created", "updated", "deleted"):
            where = {"lmsconnect.model": model, "lmsconnect.change.kind": kind}
            assert total(points, "lmsconnect.sync.changes", **where) == getattr(outcome, kind)

    assert remote_ids and secrets
    assert_nothing_leaks(strings_of(spans, points), secrets, remote_ids)


async def test_a_failed_sync_says_why_by_its_code(otel: tuple[Any, Any], tmp_path: Path) -> None:
    """Rejected credentials: the read that tried them and the sync are failed spans with the error's code,
    the HTTP span carries the 401, and the rejected key appears nowhere."""
    exporter, reader = otel
    async with simulator("talentlms", **SIZE) as sim:
        config = {**sim.connect_config, "api_key": "wrong-key-0123456789abcdef012345"}
        async with (
            lmsconnect.connect("talentlms", **config) as lms,
            lmsconnect.open_store(str(tmp_path / "state.db")) as store,
        ):
            report = await lmsconnect.sync(lms, store)
    code = lmsconnect.AuthenticationError.code
    assert not report.ok
    spans = exporter.get_finished_spans()
    [root] = [s for s in spans if s.name == "sync talentlms"]
    assert root.status.status_code.name == "ERROR" and root.attributes["error.type"] == code
    failed = [s for s in spans if s.name.startswith("read ") and s.status.status_code.name == "ERROR"]
    assert failed and all(s.attributes["error.type"] == code for s in failed)
    assert 401 in {s.attributes.get("http.response.status_code") for s in spans}
    assert_nothing_leaks(strings_of(spans, metric_points(reader)), {config["api_key"]}, set())


async def test_retries_429s_and_budget_waits_are_counted(otel: tuple[Any, Any], tmp_path: Path) -> None:
    """Against a vendor limit tighter than the client's budget: 429s, retries and budget waits are spans
    and metrics, in the same numbers as ``lms.stats``."""
    from lmsconnect_360learning.testing import Learning360Simulator

    exporter, reader = otel
    async with (
        Learning360Simulator(users=1200, courses=3, enrollments=30, read_limit=2, rate_window=0.2) as sim,
        lmsconnect.connect("360learning", **sim.connect_config, reads_per_second=50) as lms,
        lmsconnect.open_store(str(tmp_path / "state.db")) as store,
    ):
        report = await lmsconnect.sync(lms, store)
        stats = attrs.evolve(lms.stats)
    assert report.ok
    assert stats.rejected > 0 and stats.retries > 0 and stats.waits > 0
    spans = exporter.get_finished_spans()
    points = metric_points(reader)
    refused = [s for s in spans if s.attributes.get("http.response.status_code") == 429]
    assert len(refused) == stats.rejected
    assert all(s.status.status_code.name == "ERROR" and s.attributes["error.type"] == "429" for s in refused)
    assert sum(1 for s in spans if s.attributes.get("http.request.resend_count")) == stats.retries
    assert total(points, "lmsconnect.http.calls", **{"http.response.status_code": 429}) == stats.rejected
    assert total(points, "lmsconnect.http.rate_limited") == stats.rejected
    assert total(points, "lmsconnect.http.retries", **{"lmsconnect.retry.reason": "429"}) == stats.retries
    assert total(points, "lmsconnect.budget.waits") == stats.waits
    assert 0 < total(points, "lmsconnect.budget.wait_time") <= stats.wait_s


@pytest.mark.parametrize("slug", SLUGS)
async def test_action_span_and_metrics(slug: str, otel: tuple[Any, Any]) -> None:
    """An action is a span with its item count and outcomes, its HTTP calls its children, its items
    counted by outcome; a refused action is a failed span with the error's code."""
    exporter, reader = otel
    async with (
        simulator(slug, **SIZE) as sim,
        lmsconnect.connect(slug, allow_destructive=True, **sim.connect_config) as lms,
    ):
        course = await anext(lms.list("courses"))
        exporter.clear()
        result = await lms.deactivate_course(course_id=course.id)
        with pytest.raises(lmsconnect.InvalidInput):
            await lms.deactivate_course(course_id="not an id")
        spans = exporter.get_finished_spans()
        points = metric_points(reader)
        secrets = secrets_of(sim, lms)
    assert result.ok
    [action, refused] = [s for s in spans if s.name == "action deactivate_course"]
    assert action.attributes["lmsconnect.action"] == "deactivate_course"
    assert action.attributes["lmsconnect.action.items"] == 1
    status = str(result.items[0].status)
    assert action.attributes[f"lmsconnect.action.{status}"] == 1
    calls = [s for s in spans if s.kind.name == "CLIENT"]
    assert calls and all(c.parent.span_id == action.context.span_id for c in calls)
    assert refused.status.status_code.name == "ERROR"
    assert refused.attributes["error.type"] == lmsconnect.InvalidInput.code
    where = {"lmsconnect.action": "deactivate_course", "lmsconnect.item.status": status}
    assert total(points, "lmsconnect.action.items", **where) == 1
    assert_nothing_leaks(strings_of(spans, points), secrets, {course.remote_id, course.id})


def test_route_templates_keep_words_and_hide_ids() -> None:
    """Path words stay, ids become placeholders, path-style parameters keep only their names."""
    assert route_template("/v1/users/id:17") == "/v1/users/id:{id}"
    assert route_template("/v1/getuserstatusincourse/course_id:3,user_id:9") == (
        "/v1/getuserstatusincourse/course_id:{course_id},user_id:{user_id}"
    )
    assert route_template("/api/v2/users/5f3a9c1e2b4d") == "/api/v2/users/{id}"
    assert route_template("/api/v2/users/ann%40example.com/x") == "/api/v2/users/{id}/x"
    assert route_template("/webservice/rest/server.php") == "/webservice/rest/server.php"


def test_declared_routes_name_ids_that_look_like_words() -> None:
    """A connector's declared routes win over the guess, under the base URL's path; queries never show."""
    http = HttpClient(
        slug="probe", base_url="https://lms.example/api",
        routes=["/v2/courses/stats", "/v2/courses/{course_id}", "/v2/integrations/{name}/courses/{ext}"],
        operation_param="fn",
    )
    assert http.route_of("/v2/courses/stats") == "/api/v2/courses/stats"
    assert http.route_of("/v2/courses/intro?token=s3cret") == "/api/v2/courses/{course_id}"
    assert http.route_of("/v2/integrations/acme/courses/onboarding") == (
        "/api/v2/integrations/{name}/courses/{ext}"
    )
    assert http.route_of("https://lms.example/other/intro") == "/other/intro"  # a guess: words stay
    assert http._operation_of({"fn": "core_user_get_users"}) == "core_user_get_users"
    assert http._operation_of({"fn": "x; DROP TABLE"}) == "{operation}"


async def test_passthrough_calls_are_templated_too(otel: tuple[Any, Any]) -> None:
    """A passthrough call's span is named by the derived template, and an unusual method by "_OTHER"."""
    exporter, _ = otel
    async with (
        simulator("talentlms", **SIZE) as sim,
        lmsconnect.connect("talentlms", **sim.connect_config) as lms,
    ):
        user = await anext(lms.list("users"))
        exporter.clear()
        await lms.passthrough("GET", f"/v1/users/id:{user.remote_id}")
        await lms.passthrough("PROPFIND", "/v1/users", raise_for_status=False)
    names = [s.name for s in exporter.get_finished_spans()]
    assert names == ["GET /api/v1/users/id:{id}", "HTTP /api/v1/users"]
    assert exporter.get_finished_spans()[1].attributes["http.request.method"] == "_OTHER"


def test_works_without_opentelemetry(tmp_path: Path) -> None:
    """With opentelemetry not importable, lmsconnect imports, syncs and acts as before."""
    script = textwrap.dedent(
        """
        import asyncio, sys

        class NoOpenTelemetry:
            def find_spec(self, name, path=None, target=None):
                if name == "opentelemetry" or name.startswith("opentelemetry."):
                    raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)")
                return None

        sys.meta_path.insert(0, NoOpenTelemetry())
        import lmsconnect, lmsconnect._telemetry
        from lmsconnect.testing import simulator

        async def main():
            async with simulator("talentlms", users=5, courses=2, enrollments=5) as sim:
                async with lmsconnect.connect("talentlms", **sim.connect_config) as lms:
                    async with lmsconnect.open_store(sys.argv[1]) as store:
                        report = await lmsconnect.sync(lms, store)
                    revision = await anext(lms.list("course_revisions"))
                    learner = [u async for u in lms.list("users")][-1]  # the first is the admin
                    result = await lms.enroll_user(user_id=learner.id, course_revision_id=revision.id)
            assert not lmsconnect._telemetry.ENABLED
            assert "opentelemetry" not in sys.modules
            print(report.ok, report.models["users"].read, result.action)

        asyncio.run(main())
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "state.db")],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "5", "enroll_user"]


async def test_api_without_sdk_records_nothing() -> None:
    """With the API installed but no SDK configured, OpenTelemetry's no-op providers apply: reads work."""
    from opentelemetry import trace

    assert type(trace.get_tracer_provider()).__name__ == "ProxyTracerProvider"
    async with (
        simulator("talentlms", users=5, courses=2, enrollments=5) as sim,
        lmsconnect.connect("talentlms", **sim.connect_config) as lms,
    ):
        users = [u async for u in lms.list("users")]
    assert len(users) == 5


def test_every_instrument_is_documented() -> None:
    """docs/observability.md lists each metric lmsconnect creates, with its instrument kind and unit."""
    from opentelemetry.sdk.metrics import MeterProvider

    from lmsconnect._telemetry import Instruments

    page = (ROOT / "docs" / "observability.md").read_text()
    created = vars(Instruments(MeterProvider().get_meter("probe"))).values()
    assert len(created) >= 9
    for instrument in created:
        kind = "histogram" if "Histogram" in type(instrument).__name__ else "counter"
        assert f"| `{instrument.name}` | {kind} | `{instrument.unit}` |" in page, instrument.name
