"""Connector discovery: real installed distributions (a ``*.dist-info`` with entry points on sys.path).

Each test writes third-party distributions into its own directory, puts it on sys.path and reads it
through a fresh `lmsconnect._registry.Registry()` (or, where `lmsconnect.connect` itself is under test,
the process registry with its cache cleared before and after).
"""

from __future__ import annotations

import sys
import zlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

import lmsconnect
import lmsconnect.testing
from lmsconnect import ConfigurationError, PluginLoadError, User, UserStatus
from lmsconnect._registry import Registry, registry
from lmsconnect.plugin import Capabilities, Connector, ConnectorSpec, HttpClient, model_support
from lmsconnect.testing import ConformanceSuite

# A complete third-party plugin: a connector reading users, and the simulator of its vendor.
CONNECTOR = '''
from __future__ import annotations

from collections.abc import AsyncIterator

import attrs

from lmsconnect import User, UserStatus
from lmsconnect.plugin import (
    Capabilities, Connector, ConnectorSpec, HttpClient, Secret, config_field, model_support,
)


@attrs.frozen(kw_only=True)
class MiniConfig:
    base_url: str = config_field(help="Where Mini LMS lives")
    api_key: Secret = config_field(help="API key", secret=True)


class MiniConnector(Connector[MiniConfig]):
    spec = ConnectorSpec(slug="SLUG", name="Mini LMS", config=MiniConfig,
                         simulator="PACKAGE.testing:MiniSimulator")
    capabilities = Capabilities.build(
        slug="SLUG", name="Mini LMS",
        models={"users": model_support("first_name", "status")}, actions={}, features={},
    )

    def create_http(self) -> HttpClient:
        key = self.config.api_key.reveal()

        async def auth(headers: dict[str, str]) -> None:
            headers["X-Key"] = key

        return HttpClient(slug=self.slug, base_url=self.config.base_url, auth=auth, secrets=[key],
                          options=self.http_options)

    async def read_users(self) -> AsyncIterator[User]:
        for raw in await self.http.get_json("/users"):
            yield User(id=self.make_id("users", raw["id"]), remote_id=str(raw["id"]),
                       first_name=raw["name"], status=UserStatus(raw["status"]),
                       remote_data={"/users": raw})
'''

SIMULATOR = '''
from __future__ import annotations

from collections import Counter
from typing import Any

from aiohttp import web


class MiniSimulator:
    def __init__(self, *, users: int = 3, courses: int = 0, enrollments: int = 0, seed: int = 0,
                 latency: float = 0.0, api_key: str = "mini-api-key-0001") -> None:
        self.users = [{"id": i, "name": f"User {i}", "status": "ACTIVE" if i % 2 else "SUSPENDED"}
                      for i in range(1, users + 1)]
        self.api_key = api_key
        self.calls = 0
        self.calls_by_route: Counter[str] = Counter()
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def _users(self, request: web.Request) -> web.StreamResponse:
        self.calls += 1
        self.calls_by_route["GET /users"] += 1
        if request.headers.get("X-Key") != self.api_key:
            return web.json_response({"error": "bad key"}, status=401)
        return web.json_response(self.users)

    @property
    def connect_config(self) -> dict[str, Any]:
        return {"base_url": self.url, "api_key": self.api_key}

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        app = web.Application()
        app.router.add_get("/users", self._users)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        bound_host, bound_port = self._runner.addresses[0][:2]
        self.url = f"http://{bound_host}:{bound_port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> MiniSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
'''

# What can be wrong with an installed plugin, each as (entry point target, module source, expected cause).
BROKEN: dict[str, tuple[str, str, str]] = {
    "import-error": (
        "PACKAGE:MiniConnector",
        "import lmsconnect_dependency_that_is_not_installed\n",
        "ModuleNotFoundError",
    ),
    "missing-hook": (
        "PACKAGE:MiniConnector",
        CONNECTOR.replace("async def read_users", "async def read_people"),
        "there is no read_users()",
    ),
    "slug-mismatch": (
        "PACKAGE:MiniConnector",
        CONNECTOR.replace('"SLUG"', '"another-slug"'),
        "differs from the connector's slug",
    ),
    "missing-attribute": ("PACKAGE:NoSuchConnector", CONNECTOR, "AttributeError"),
    "not-a-connector": ("PACKAGE:MiniConfig", CONNECTOR, "is not a subclass of lmsconnect.plugin.Connector"),
}


def write_distribution(
    root: Path,
    *,
    dist: str,
    slug: str,
    package: str,
    target: str = "PACKAGE:MiniConnector",
    source: str = CONNECTOR,
    version: str = "1.0",
) -> None:
    """An installed distribution as pip leaves it: the package, and its dist-info with entry points."""
    root.mkdir(parents=True, exist_ok=True)
    pkg = root / package
    pkg.mkdir()
    (pkg / "__init__.py").write_text(source.replace("SLUG", slug).replace("PACKAGE", package))
    (pkg / "testing.py").write_text(SIMULATOR)
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(
        f"[lmsconnect.connectors]\n{slug} = {target.replace('PACKAGE', package)}\n"
    )


def forget_modules(root: Path) -> None:
    for name, module in list(sys.modules.items()):
        if str(getattr(module, "__file__", None) or "").startswith(str(root)):
            del sys.modules[name]


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A directory on sys.path to install distributions into; the process registry rescans around it."""
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.clear_cache()
    yield tmp_path
    forget_modules(tmp_path)
    registry.clear_cache()


def package_name(request: pytest.FixtureRequest, suffix: str = "") -> str:
    """A module name unique to the test, so sys.modules never serves another test's copy."""
    return f"lmsconnect_mini_{zlib.crc32(request.node.nodeid.encode()):x}{suffix}"


class TestThirdPartyDistribution:
    def test_listed_with_its_distribution(self, site: Path, request: pytest.FixtureRequest) -> None:
        """An installed plugin is listed with its slug, name, distribution, version and entry point."""
        package = package_name(request)
        write_distribution(site, dist="lmsconnect-mini", slug="minilms", package=package, version="2.3")
        (info,) = [i for i in Registry().infos() if i.slug == "minilms"]
        assert info.ok, info.error
        assert (info.name, info.distribution, info.version) == ("Mini LMS", "lmsconnect-mini", "2.3")
        assert info.entry_point == f"{package}:MiniConnector"

    async def test_connect_works_without_any_core_change(
        self, site: Path, request: pytest.FixtureRequest
    ) -> None:
        """available_connectors() lists it and lmsconnect.connect reads users through it."""
        package = package_name(request)
        write_distribution(site, dist="lmsconnect-mini", slug="minilms", package=package)
        assert "minilms" in [i.slug for i in lmsconnect.available_connectors() if i.ok]
        async with lmsconnect.testing.simulator("minilms", users=3) as sim:
            lms = lmsconnect.connect("minilms", **sim.connect_config)
            async with lms:
                users = [u async for u in lms.list(User)]
        assert [u.first_name for u in users] == ["User 1", "User 2", "User 3"]
        assert [u.status for u in users] == [UserStatus.ACTIVE, UserStatus.UNKNOWN, UserStatus.ACTIVE]
        assert sim.calls == 1


class TestBrokenPlugin:
    @pytest.mark.parametrize("kind", list(BROKEN))
    def test_reported_by_name_while_others_load(
        self, site: Path, request: pytest.FixtureRequest, kind: str
    ) -> None:
        """A broken plugin is listed with its distribution and the cause; a sound one still loads."""
        target, source, cause = BROKEN[kind]
        write_distribution(site / "good", dist="lmsconnect-mini", slug="minilms",
                           package=package_name(request, "_good"))
        write_distribution(site / "bad", dist="lmsconnect-broken", slug="brokenlms",
                           package=package_name(request, "_bad"), target=target, source=source)
        sys.path[:0] = [str(site / "good"), str(site / "bad")]
        try:
            reg = Registry()
            infos = {i.slug: i for i in reg.infos()}
            assert infos["minilms"].ok
            broken = infos["brokenlms"]
            assert not broken.ok
            assert broken.distribution == "lmsconnect-broken"
            assert broken.error is not None
            assert "lmsconnect-broken" in broken.error
            assert cause in broken.error
            with pytest.raises(PluginLoadError) as caught:
                reg.get("brokenlms")
            assert caught.value.distribution == "lmsconnect-broken"
            assert caught.value.code == "CONFIG.PLUGIN_BROKEN"
            assert "reinstall" in str(caught.value)
            assert isinstance(caught.value, ConfigurationError)
            assert reg.get("minilms").spec.slug == "minilms"
        finally:
            sys.path.remove(str(site / "good"))
            sys.path.remove(str(site / "bad"))

    def test_broken_plugin_is_imported_once(self, site: Path, request: pytest.FixtureRequest) -> None:
        """Asking again for a broken plugin repeats the same error without importing it again."""
        package = package_name(request)
        source = "import builtins\nbuiltins.lmsconnect_import_count = getattr(builtins, " \
                 "'lmsconnect_import_count', 0) + 1\nraise RuntimeError('boom at import')\n"
        write_distribution(site, dist="lmsconnect-broken", slug="brokenlms", package=package, source=source)
        import builtins

        reg = Registry()
        with pytest.raises(PluginLoadError, match="RuntimeError: boom at import") as first:
            reg.get("brokenlms")
        with pytest.raises(PluginLoadError) as second:
            reg.get("brokenlms")
        assert first.value is second.value
        assert builtins.lmsconnect_import_count == 1  # type: ignore[attr-defined]
        del builtins.lmsconnect_import_count  # type: ignore[attr-defined]


class TestDuplicates:
    @pytest.mark.parametrize("order", ["zeta-first", "alpha-first"])
    def test_first_distribution_by_name_wins(
        self, site: Path, request: pytest.FixtureRequest, order: str
    ) -> None:
        """Two distributions with one slug: the one whose name sorts first wins, whatever the path order."""
        write_distribution(site / "zeta", dist="lmsconnect-zeta", slug="duplms",
                           package=package_name(request, "_zeta"))
        write_distribution(site / "alpha", dist="lmsconnect-alpha", slug="duplms",
                           package=package_name(request, "_alpha"))
        dirs = ["zeta", "alpha"] if order == "zeta-first" else ["alpha", "zeta"]
        sys.path[:0] = [str(site / d) for d in dirs]
        try:
            reg = Registry()
            (info,) = [i for i in reg.infos() if i.slug == "duplms"]
            assert info.distribution == "lmsconnect-alpha"
            assert len(info.shadowed) == 1
            assert "lmsconnect-zeta" in info.shadowed[0]
            assert reg.get("duplms").__module__ == package_name(request, "_alpha")
        finally:
            for d in dirs:
                sys.path.remove(str(site / d))

    def test_same_distribution_twice_on_the_path_is_not_a_duplicate(
        self, site: Path, request: pytest.FixtureRequest
    ) -> None:
        """One distribution reachable through two sys.path entries is listed once, shadowing nothing."""
        write_distribution(site, dist="lmsconnect-mini", slug="minilms", package=package_name(request))
        sys.path.append(str(site))
        try:
            infos = [i for i in Registry().infos() if i.slug == "minilms"]
            assert len(infos) == 1
            assert infos[0].shadowed == ()
        finally:
            sys.path.pop()


def make_connector(slug: str, name: str = "In Code") -> type[Connector[Any]]:
    import attrs

    @attrs.frozen(kw_only=True)
    class Config:
        base_url: str

    class InCode(Connector[Any]):
        spec = ConnectorSpec(slug=slug, name=name, config=Config)
        capabilities = Capabilities.build(
            slug=slug, name=name, models={"users": model_support("first_name")}, actions={}, features={}
        )

        def create_http(self) -> HttpClient:
            return HttpClient(slug=self.slug, base_url=self.config.base_url)

        async def read_users(self) -> AsyncIterator[User]:
            yield User(id=self.make_id("users", 1), remote_id="1", first_name="In Code")

    return InCode


class TestInCodeRegistration:
    def test_in_code_registration_wins_over_an_entry_point(
        self, site: Path, request: pytest.FixtureRequest
    ) -> None:
        """A connector registered in code replaces the installed one of the same slug until unregistered."""
        write_distribution(site, dist="lmsconnect-mini", slug="minilms", package=package_name(request))
        reg = Registry()
        installed = reg.get("minilms")
        private = make_connector("minilms")
        reg.register(private)
        assert reg.get("minilms") is private
        (info,) = [i for i in reg.infos() if i.slug == "minilms"]
        assert info.distribution is None
        assert info.entry_point is not None and info.entry_point.endswith("(registered in code)")
        reg.unregister("minilms")
        assert reg.get("minilms") is installed

    def test_second_class_for_a_slug_needs_replace(self) -> None:
        """Registering a different class under a taken slug is refused unless replace=True."""
        reg = Registry(group="lmsconnect.tests.nothing")
        first, second = make_connector("private"), make_connector("private")
        reg.register(first)
        reg.register(first)  # the same class again is harmless
        with pytest.raises(ConfigurationError, match="replace=True"):
            reg.register(second)
        reg.register(second, replace=True)
        assert reg.get("private") is second

    def test_register_connector_front_door(self) -> None:
        """lmsconnect.register_connector makes a private connector available to connect()."""
        cls = make_connector("private-front-door")
        lmsconnect.register_connector(cls)
        try:
            assert "private-front-door" in [i.slug for i in lmsconnect.available_connectors()]
            lms = lmsconnect.connect("private-front-door", base_url="http://127.0.0.1:9")
            assert isinstance(lms, cls)
        finally:
            registry.unregister("private-front-door")

    def test_invalid_class_is_refused(self) -> None:
        """A class that breaks the connector contract is refused at registration, saying why."""
        broken = make_connector("private")
        del broken.read_users  # type: ignore[attr-defined]  # the table still promises users
        with pytest.raises(TypeError, match=r"no read_users\(\)"):
            Registry().register(broken)
        class Coroutine(make_connector("private")):  # type: ignore[misc]
            async def read_users(self) -> list[User]:  # type: ignore[override]
                return []

        with pytest.raises(TypeError, match=r"read_users\(\) must be an async generator"):
            Registry().register(Coroutine)
        with pytest.raises(TypeError, match="not a subclass"):
            Registry().register(dict)  # type: ignore[arg-type]


class TestLookup:
    def test_unknown_slug_names_what_is_installed(self) -> None:
        """Asking for a connector nobody installed says which are installed, guessing no package name."""
        reg = Registry(group="lmsconnect.tests.nothing")
        reg.register(make_connector("private"))
        with pytest.raises(ConfigurationError) as caught:
            reg.get("nolms")
        assert "Installed: private" in str(caught.value)
        assert "Did you mean" not in str(caught.value)
        assert "lmsconnect-nolms" not in str(caught.value)

    def test_misspelt_slug_suggests_the_close_one(self) -> None:
        """A slug one letter off names the installed connector it probably meant."""
        reg = Registry(group="lmsconnect.tests.nothing")
        reg.register(make_connector("talentlms"))
        with pytest.raises(ConfigurationError, match="Did you mean 'talentlms'"):
            reg.get("talentlm")

    def test_entry_points_are_scanned_once(self, site: Path, request: pytest.FixtureRequest) -> None:
        """The scan is cached: a plugin installed later shows up only after clear_cache()."""
        reg = Registry()
        assert "minilms" not in [i.slug for i in reg.infos()]
        write_distribution(site, dist="lmsconnect-mini", slug="minilms", package=package_name(request))
        assert "minilms" not in [i.slug for i in reg.infos()]
        reg.clear_cache()
        assert "minilms" in [i.slug for i in reg.infos()]

    def test_infos_are_sorted_by_slug(self, site: Path, request: pytest.FixtureRequest) -> None:
        """available connectors come sorted by slug, installed and in-code ones together."""
        write_distribution(site, dist="lmsconnect-mini", slug="minilms", package=package_name(request))
        reg = Registry()
        reg.register(make_connector("aaa-private"))
        reg.register(make_connector("zzz-private"))
        slugs = [i.slug for i in reg.infos()]
        assert slugs == sorted(slugs)
        assert {"aaa-private", "minilms", "zzz-private"} <= set(slugs)


@pytest.fixture(scope="class")
def mini_installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    root = tmp_path_factory.mktemp("third-party-site")
    write_distribution(root, dist="lmsconnect-minikit", slug="minikit", package="lmsconnect_minikit")
    sys.path.insert(0, str(root))
    registry.clear_cache()
    yield
    sys.path.remove(str(root))
    forget_modules(root)
    registry.clear_cache()


@pytest.mark.usefixtures("mini_installed")
class TestThirdPartyPassesConformanceKit(ConformanceSuite):
    """The conformance kit runs unchanged against a connector installed only as a distribution."""

    slug = "minikit"
    simulator_options: ClassVar[dict[str, Any]] = {"users": 4}
