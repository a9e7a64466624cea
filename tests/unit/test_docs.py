"""The README's connector reference is what the schemas say, for every connector."""

from __future__ import annotations

from pathlib import Path

import pytest

from baton import docs, plugin

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_connector_reference_is_up_to_date() -> None:
    text = README.read_text("utf-8")
    assert docs.rewrite(text) == text, (
        "README.md's connector reference is stale: run `python -m baton.docs README.md`")


def test_every_connector_has_a_table_with_its_settings() -> None:
    reference = docs.connector_reference()
    for name in plugin.discover(plugin.CONNECTOR_GROUP):
        assert f"### `{name}`" in reference
    assert "| `rate_limit.per` | The interval. | `1m` |" in reference
    assert "*Secret: `{env: NAME}` or `{file: PATH}`.*" in reference


def test_rewrite_needs_the_markers() -> None:
    with pytest.raises(ValueError, match="markers"):
        docs.rewrite("# no markers here\n")
    before = f"intro\n{docs.BEGIN}\nold stuff\n{docs.END}\noutro\n"
    after = docs.rewrite(before)
    assert after.startswith("intro\n") and after.endswith("\noutro\n")
    assert "old stuff" not in after and docs.rewrite(after) == after


def test_main_writes_the_file(tmp_path: Path) -> None:
    target = tmp_path / "R.md"
    target.write_text(f"{docs.BEGIN}\n{docs.END}\n", "utf-8")
    assert docs.main([str(target)]) == 0
    assert "### `webhook`" in target.read_text("utf-8")
    assert docs.main([]) == 2
