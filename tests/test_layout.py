"""The README's Layout section is the tree: every path it names exists, and every top-level folder of the
repository and every package of the product is in it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _layout() -> dict[str, str]:
    """The Layout block: each path it names (a line's first column, several split by commas), with its parent
    folder for indented lines."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"^## Layout\n\n```\n(.*?)^```", text, re.S | re.M)
    assert block, "README.md has no ## Layout section with a code block"
    paths: dict[str, str] = {}
    parent = ""
    for line in block.group(1).splitlines():
        if not line.strip() or line.startswith("    "):
            continue  # a description's second line
        indented = line.startswith("  ")
        names = re.split(r"\s{2,}", line.strip())[0]
        for name in (n.strip() for n in names.split(",")):
            path = f"{parent}{name}" if indented else name
            paths[path.rstrip("/")] = line
        if not indented:
            parent = names if names.endswith("/") else ""
    return paths


def test_every_path_the_layout_names_exists():
    missing = [path for path in _layout() if not (ROOT / path).exists()]
    assert not missing, f"README Layout names paths that do not exist: {missing}"


def test_every_folder_and_package_is_in_the_layout():
    listed = set(_layout())
    top = {
        p.name
        for p in ROOT.iterdir()
        if p.is_dir() and not p.name.startswith(".") and p.name != "__pycache__"
    }
    top -= {"data", "node_modules"}  # what runs write, never committed
    top = {
        name for name in top if any((ROOT / name).rglob("*")) and not (ROOT / name / "pyvenv.cfg").exists()
    }
    packages = {
        f"plugins/emergency_dw/{p.name}"
        for p in (ROOT / "plugins" / "emergency_dw").iterdir()
        if p.is_dir() and (p / "__init__.py").exists()
    }
    plugins = {f"plugins/{p.name}" for p in (ROOT / "plugins").iterdir() if (p / "__init__.py").exists()}
    named = listed | {path.split("/")[0] for path in listed}
    absent = sorted((top | packages | plugins) - named)
    assert not absent, f"README Layout does not say what these are: {absent}"
