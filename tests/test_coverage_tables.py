"""Every field and action of the vendor coverage tables (../shared/seeds) is supported by the matching
connector's capability table — `supported`, or `partial` with a note saying exactly what the vendor
cannot do (Moodle cannot back-date a completion), never silently missing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lmsconnect._capabilities import FieldCapability, Support
from lmsconnect._comparison import KOMBO_ACTIONS, KOMBO_MODELS, TRUTO_NAMES, TRUTO_ONLY, TRUTO_RESOURCES
from lmsconnect._models import model_fields
from lmsconnect._registry import registry

# Beside the checkout in CI (../shared), or the project's shared folder on the development machine.
SEEDS = next(
    (p for p in (Path(__file__).resolve().parents[2] / "shared" / "seeds", Path("/work/shared/seeds"))
     if p.is_dir()),
    Path(__file__).resolve().parents[2] / "shared" / "seeds",
)
MODEL_KEYS = {
    "Users": "users", "Course Providers": "course_providers", "Courses": "courses",
    "Course Revisions": "course_revisions", "Course Progressions": "course_progressions",
    "Skills": "skills", "Revision skills": "revision_skills",
}
ACTION_KEYS = {
    "Upsert courses": "upsert_courses", "Deactivate course": "deactivate_course",
    "Enroll user in course": "enroll_user", "Complete course": "complete_course",
}
FEATURE_KEYS = {"API Passthrough": "passthrough", "Scope Testing": "scope_testing",
                "Per Model Tests": "per_model_tests"}


def coverage(slug: str) -> dict[str, dict[str, list[str]]]:
    """{"models"|"actions": {key: [field, ...]}, "features": {key: []}} parsed from the seed page."""
    text = (SEEDS / f"{slug}-connector-coverage.md").read_text()
    out: dict[str, dict[str, list[str]]] = {"models": {}, "actions": {}, "features": {}}
    for title, body in re.findall(r'<Accordion title="([^"]+)">(.*?)</Accordion>', text, flags=re.S):
        fields = [f.replace("\\_", "_") for f in re.findall(r"^\s*\|\s*([a-z][\w\\.]*)\s*\|", body, re.M)]
        if title in MODEL_KEYS:
            out["models"][MODEL_KEYS[title]] = fields
        elif title in ACTION_KEYS:
            out["actions"][ACTION_KEYS[title]] = fields
    features = text.split('<Tab title="Features">')[-1]
    for name, key in FEATURE_KEYS.items():
        if f"| {name}" in features:
            out["features"][key] = []
    return out


def _covered(field: FieldCapability) -> bool:
    return field.support is Support.SUPPORTED or (field.support is Support.PARTIAL and bool(field.note))


@pytest.mark.parametrize("slug", ["talentlms", "360learning", "moodle"])
def test_every_coverage_field_is_supported(slug: str) -> None:
    """The connector's table supports every model field, action input and feature the vendor lists."""
    if not (SEEDS / f"{slug}-connector-coverage.md").exists():
        pytest.skip("shared/seeds is not beside this checkout")
    if slug not in {i.slug for i in registry.infos() if i.ok}:
        pytest.skip(f"the {slug} plugin is not installed")
    table = registry.get(slug).capabilities
    expected = coverage(slug)
    assert expected["models"] and expected["actions"], "the seed page did not parse"
    missing = []
    for model, fields in expected["models"].items():
        cap = table.models[model]
        missing += [f"model {model}"] if not cap.supported else []
        missing += [f"{model}.{f}" for f in fields if not _covered(cap.field(f))]
    for action, fields in expected["actions"].items():
        acap = table.actions[action]
        missing += [f"action {action}"] if not acap.supported else []
        missing += [f"{action}.{f}" for f in fields if not _covered(acap.field(f))]
    missing += [f"feature {k}" for k in expected["features"] if not table.features[k].supported]  # type: ignore[index]
    assert not missing, f"{slug}: not supported although the coverage table lists them: {missing}"


@pytest.mark.parametrize("slug", ["talentlms", "360learning", "moodle"])
def test_kombo_facts_of_the_comparison_page_match_the_coverage_tables(slug: str) -> None:
    """lmsconnect/_comparison.py lists exactly the fields of Kombo's coverage table, model and action."""
    if not (SEEDS / f"{slug}-connector-coverage.md").exists():
        pytest.skip("shared/seeds (../shared/seeds or /work/shared/seeds) is not reachable")
    expected = coverage(slug)
    assert expected["models"] and expected["actions"], "the seed page did not parse"
    assert {m: list(f) for m, f in KOMBO_MODELS[slug].items()} == expected["models"]
    assert {a: list(f) for a, f in KOMBO_ACTIONS[slug].items()} == expected["actions"]


def truto_reference() -> dict[str, list[str]]:
    """{resource: [field, ...]} parsed from the Truto unified LMS reference in the seeds."""
    text = (SEEDS / "unified-lms-api-reference-truto.md").read_text()
    found: dict[str, list[str]] = {}
    for title, body in re.findall(r"^### (\S+)\n(.*?)(?=^##)", text, flags=re.M | re.S):
        found[title] = re.findall(r"^- `(\w+)` \(", body, flags=re.M)
    return found


def test_truto_facts_of_the_comparison_page_match_the_reference() -> None:
    """Each Truto field is named once on the page: mapped to one of ours, or listed as Truto's alone."""
    if not (SEEDS / "unified-lms-api-reference-truto.md").exists():
        pytest.skip("shared/seeds (../shared/seeds or /work/shared/seeds) is not reachable")
    reference = truto_reference()
    assert set(reference) == {"Course-enrollments", "Course-items", "Courses", "Users"}
    named: dict[str, set[str]] = {resource: set(fields) for resource, fields in TRUTO_ONLY.items()}
    for model, names in TRUTO_NAMES.items():
        assert set(names) <= set(model_fields(model)), model
        named.setdefault(TRUTO_RESOURCES[model], set()).update(n.split(" ", 1)[0] for n in names.values())
    assert {r: sorted(f) for r, f in named.items()} == {r: sorted(f) for r, f in reference.items()}
