"""The README and the docs name only files that exist: every relative link, and every
``docs/…``, ``conf/…``, ``mlp_sweep/…``, ``scripts/…`` or ``tests/…`` path they mention."""

import re

import pytest

from helpers import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")  # [text](target) or [text](target#anchor)
PATH = re.compile(r"(?<![\w/.-])((?:docs|conf|mlp_sweep|scripts|tests|benchmarks|hydra_plugins)/[\w./-]*\w)")


def named_files(page) -> list[tuple[str, object]]:
    text = page.read_text()
    links = [(t, page.parent / t) for t in LINK.findall(text) if "://" not in t and not t.startswith("mailto:")]
    paths = [(p, ROOT / p) for p in PATH.findall(text) if "<" not in p and "*" not in p]
    return links + paths


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_every_file_a_page_names_exists(page):
    missing = [name for name, path in named_files(page) if not path.exists()]
    assert not missing, f"{page.name} names files that do not exist: {missing}"


def test_the_readme_stays_short_and_links_every_docs_page():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    for page in PAGES[1:]:
        assert f"docs/{page.name}" in readme, f"README does not link docs/{page.name}"
