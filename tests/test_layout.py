"""The tree keeps the shape docs/architecture.md describes."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "imagedex"
ARCHITECTURE = (ROOT / "docs" / "architecture.md").read_text("utf-8")


def python_sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_few_modules_at_the_package_root() -> None:
    root_modules = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(root_modules) <= 12, root_modules


def test_the_architecture_doc_names_every_package_and_root_module() -> None:
    packages = [p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()]
    modules = [p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py"]
    missing = [f"{n}/" for n in packages if f"`{n}/" not in ARCHITECTURE]
    missing += [n for n in modules if n not in ARCHITECTURE]
    assert missing == [], f"docs/architecture.md does not mention {missing}"


def test_every_module_the_architecture_doc_names_exists() -> None:
    named = set(re.findall(r"`([a-z_]+/)?([a-z_]+\.py)", ARCHITECTURE))
    sources = {str(p.relative_to(PACKAGE)) for p in python_sources()}
    names = {p.name for p in python_sources()}
    stale = [
        folder + module
        for folder, module in named
        if (folder and folder + module not in sources) or (not folder and module not in names)
    ]
    assert stale == [], f"docs/architecture.md names modules that do not exist: {stale}"


def test_sqlite_connections_open_in_one_place() -> None:
    openers = [
        str(p.relative_to(PACKAGE)) for p in python_sources() if "sqlite3.connect(" in p.read_text()
    ]
    assert openers == ["db.py"]


def test_no_capability_probes_on_analyzers_indexes_or_stores() -> None:
    """What an analyzer, an index or a store can do is declared in its protocol, not guessed."""
    probe = re.compile(r"\b(hasattr|getattr)\(\s*(recognizer|analyzer|r|e|enricher|index|store)\b")
    probe_on_services = re.compile(r"\b(hasattr|getattr)\([^)]*\.(index|store)\b")
    found = [
        f"{p.relative_to(PACKAGE)}:{n}"
        for p in python_sources()
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if probe.search(line) or probe_on_services.search(line)
    ]
    assert found == []
