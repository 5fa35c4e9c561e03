"""The README's pictures are of the current pages: docs/img/pages.sha256 holds the hashes of the
pages docs/screenshots.py photographed, and the templates must still render exactly those."""

from __future__ import annotations

from tests.docs_scripts import ROOT, load_docs_script


def _script():
    return load_docs_script("screenshots")


def test_the_pictures_show_the_pages_the_templates_render_now():
    script = _script()
    pages = script.render_pages()
    assert script.page_hashes(pages) == script.HASHES.read_text(encoding="utf-8"), (
        "the report or summary templates changed: run `uv run python docs/screenshots.py` and commit docs/img/")
    for name in pages:
        png = script.IMG / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{png} is not a PNG"


def test_the_readme_shows_both_pictures():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in _script().PAGES:
        assert f"(docs/img/{name}.png)" in readme
