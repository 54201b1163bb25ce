"""Issue 22 item 13: the docs stand on their own: no page cites the design notes that are
not part of the repository (DESIGN.md, ../shared/)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_no_doc_cites_files_outside_the_repository() -> None:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    cited = [f"{page.relative_to(ROOT)}:{number}"
             for page in pages
             for number, line in enumerate(page.read_text().splitlines(), start=1)
             if re.search(r"DESIGN\.md|shared/|STYLE\.md", line)]
    assert cited == []


def test_every_relative_link_of_the_docs_resolves() -> None:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    broken = []
    for page in pages:
        for target in re.findall(r"\]\(([^)#:\s]+)(?:#[^)]*)?\)", page.read_text()):
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)} → {target}")
    assert broken == []
