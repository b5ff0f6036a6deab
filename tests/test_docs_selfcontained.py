"""The repository's docs stand alone: no file names a path outside the repository (a design
note under `shared/`), and every relative link in a Markdown page resolves to a file in it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_OUTSIDE = re.compile(r"(?<![\w.-])shared/|\bARCHITECTURE\.md|\bSTYLE\.md")
_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def tracked() -> list[Path]:
    names = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                           check=True, timeout=30).stdout.split()
    return [ROOT / name for name in names
            if name.endswith((".md", ".py", ".yaml", ".yml", ".sh", ".toml", ".proto"))]


def test_nothing_refers_to_files_outside_the_repository() -> None:
    this = Path(__file__).resolve()
    found = [f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
             for path in tracked() if path.resolve() != this and path.exists()
             for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if _OUTSIDE.search(line)]
    assert not found, "\n".join(found)


def test_relative_markdown_links_resolve_inside_the_repository() -> None:
    broken = []
    for page in (p for p in tracked() if p.suffix == ".md" and p.exists()):
        for target in _LINK.findall(page.read_text(encoding="utf-8")):
            if "://" in target or target.startswith("mailto:"):
                continue
            resolved = (page.parent / target).resolve()
            if not resolved.is_relative_to(ROOT) or not resolved.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert not broken, "\n".join(broken)
