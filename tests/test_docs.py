"""Generated docs are current: docs/capabilities is exactly what the capability tables render."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from lmsconnect._cli import main

ROOT = Path(__file__).resolve().parents[1]


def repo_plugin_slugs() -> list[str]:
    slugs = []
    for pyproject in sorted((ROOT / "plugins").glob("*/pyproject.toml")):
        text = pyproject.read_text()
        section = r'\[project\.entry-points\."lmsconnect\.connectors"\]'
        match = re.search(section + r'\s*\n\s*"?([\w.-]+)"?\s*=', text)
        if match:
            slugs.append(match.group(1))
    return slugs


def test_capability_pages_are_current() -> None:
    """`lmsconnect docs --check` finds nothing stale for the plugins in this repository."""
    slugs = repo_plugin_slugs()
    if not slugs:
        pytest.skip("no plugins in this checkout")
    out = io.StringIO()
    code = main(["docs", "--check", "--out", str(ROOT / "docs" / "capabilities"), *slugs], out=out)
    assert code == 0, out.getvalue()


def test_check_flags_a_stale_page(tmp_path: Path) -> None:
    """A hand-edited page is reported stale, naming the file and the command that regenerates it."""
    out = io.StringIO()
    assert main(["docs", "--out", str(tmp_path / "capabilities"), "toylms"], out=out) == 0
    page = tmp_path / "capabilities" / "toylms.md"
    page.write_text(page.read_text().replace("supported", "SUPPORTED", 1))
    out = io.StringIO()
    assert main(["docs", "--check", "--out", str(tmp_path / "capabilities"), "toylms"], out=out) == 1
    assert "stale:" in out.getvalue() and "toylms.md" in out.getvalue()


def test_the_comparison_page_is_written_beside_the_folder_and_checked(tmp_path: Path) -> None:
    """`docs` writes comparison.md next to the capability folder; a hand edit makes `--check` fail."""
    folder = tmp_path / "capabilities"
    assert main(["docs", "--out", str(folder), "toylms"], out=io.StringIO()) == 0
    page = tmp_path / "comparison.md"
    text = page.read_text()
    assert "| model | Kombo toylms | lmsconnect toylms |" in text and "Truto" in text
    assert main(["docs", "--check", "--out", str(folder), "toylms"], out=io.StringIO()) == 0
    page.write_text(text.replace("| yes |", "| no |", 1))
    out = io.StringIO()
    assert main(["docs", "--check", "--out", str(folder), "toylms"], out=out) == 1
    assert f"stale: {page}" in out.getvalue()


def test_the_comparison_page_follows_the_capability_tables() -> None:
    """A field a table stops supporting loses its `yes` on the page; one only we fill is listed as ours."""
    import attrs

    from lmsconnect._capabilities import FieldCapability, Support
    from lmsconnect._comparison import comparison_markdown
    from lmsconnect._registry import registry

    table = registry.get("toylms").capabilities
    users = table.models["users"]
    row = "| `first_name` | same | n/a | yes |"
    assert row in comparison_markdown([table])
    fields = {**users.fields, "first_name": FieldCapability(support=Support.UNSUPPORTED),
              "remote_role": FieldCapability(support=Support.SUPPORTED)}
    changed = attrs.evolve(table, models={**table.models, "users": attrs.evolve(users, fields=fields)})
    page = comparison_markdown([changed])
    assert row not in page and "| `first_name` | same | n/a | — |" in page
    assert "- users: `remote_role`" in page


RUN = {"python", "sh", "console"}  # run by the Sybil setup in conftest.py
NOT_CODE = {"text", "toml"}  # layouts and configuration excerpts: nothing to run


def test_every_code_block_is_run_or_declared_not_code() -> None:
    """Every fenced block in README.md and docs/ is in a language the docs tests run, or is plain data."""
    from sybil import Document
    from sybil.parsers.markdown.lexers import FencedCodeBlockLexer

    lexer = FencedCodeBlockLexer(language=r".*", mapping={"language": "language"})
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    found = {
        f"{page.name}:{region.start}": str(region.lexemes["language"]).strip()
        for page in pages
        for region in lexer(Document(page.read_text(), str(page)))
    }
    assert found
    assert {where: lang for where, lang in found.items() if lang not in RUN | NOT_CODE} == {}
