"""Export guard: `__all__` is exactly the public names, so nothing is exported (or hidden) by accident."""

from __future__ import annotations
import __future__

import types

import pytest

import lmsconnect
import lmsconnect.plugin
import lmsconnect.testing
import lmsconnect.workers


def public_names(module: types.ModuleType) -> set[str]:
    """Names a user sees in the module: not private, not a submodule, not a __future__ feature."""
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and not isinstance(value, __future__._Feature)
    }


class TestAll:
    @pytest.mark.parametrize(
        "module", [lmsconnect, lmsconnect.plugin, lmsconnect.workers], ids=lambda m: m.__name__
    )
    def test_all_is_the_public_names(self, module: types.ModuleType) -> None:
        """`__all__` lists every public name of the module and nothing else (plus __version__)."""
        assert set(module.__all__) - {"__version__"} == public_names(module)

    @pytest.mark.parametrize(
        "module",
        [lmsconnect, lmsconnect.plugin, lmsconnect.testing, lmsconnect.workers],
        ids=lambda m: m.__name__,
    )
    def test_all_is_sorted_unique_and_resolves(self, module: types.ModuleType) -> None:
        """`__all__` is sorted, has no duplicates, and every name in it exists."""
        assert module.__all__ == sorted(module.__all__)
        assert len(module.__all__) == len(set(module.__all__))
        for name in module.__all__:
            assert getattr(module, name) is not None

    def test_version(self) -> None:
        """lmsconnect.__version__ is a version string."""
        assert lmsconnect.__version__.count(".") >= 1


class TestPromisedNames:
    @pytest.mark.parametrize(
        "name",
        [
            "connect", "available_connectors", "register_connector",
            "User", "CourseProvider", "Course", "CourseRevision", "CourseProgression", "Skill",
            "RevisionSkill",
            "UserStatus", "RevisionStatus", "ProgressionStatus", "CourseType",
            "UpsertCourses", "UpsertCourseItem", "CourseInput", "DeactivateCourse", "EnrollUser",
            "CompleteCourse", "ActionResult", "ItemResult", "ItemStatus", "ItemError",
            "LMSConnectError", "ConfigurationError", "PluginLoadError", "InvalidInput", "NotSupported",
            "DestructiveActionRefused", "AuthenticationError", "PermissionDenied", "NotFound", "RateLimited",
            "RemoteError", "InvalidRemoteResponse", "ActionFailed",
            "Capabilities", "Connector", "ConnectorInfo", "CheckReport", "CheckStatus", "HttpOptions",
        ],
    )
    def test_exported(self, name: str) -> None:
        """What the issue promises users is importable from lmsconnect and listed in __all__."""
        assert name in lmsconnect.__all__
        assert hasattr(lmsconnect, name)

    @pytest.mark.parametrize(
        "name",
        ["Connector", "ConnectorSpec", "HttpClient", "RateBudget", "RateWindow", "Secret", "config_field",
         "model_support", "action_support", "paginate_link", "paginate_pages", "paginate_offset",
         "stream_map", "make_id", "parse_id", "make_converter"],
    )
    def test_plugin_kit(self, name: str) -> None:
        """What the plugin guide tells authors to import is in lmsconnect.plugin."""
        assert name in lmsconnect.plugin.__all__

    def test_private_modules_stay_private(self) -> None:
        """Implementation modules are underscored; only .plugin, .testing, .workers (and .sync) are public."""
        import pkgutil

        public = {m.name for m in pkgutil.iter_modules(lmsconnect.__path__) if not m.name.startswith("_")}
        assert {"plugin", "testing"} <= public <= {"plugin", "testing", "sync", "workers"}
