"""The import directions of DESIGN.md, checked on the source: they keep the house easy to walk."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _imported_roots(package: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in sorted((REPO / package).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], set()).add(str(path.relative_to(REPO)))
    return found


def test_eval_imports_neither_detect_proposals_nor_torch():
    roots = _imported_roots("eval")
    for forbidden in ("detect", "proposals", "torch", "torchvision"):
        assert forbidden not in roots, f"eval/ imports {forbidden}: {sorted(roots.get(forbidden, []))}"


def test_proposals_does_not_import_detect():
    roots = _imported_roots("proposals")
    assert "detect" not in roots, f"proposals/ imports detect: {sorted(roots['detect'])}"


def test_cli_help_does_not_import_torch():
    code = (
        "import sys\n"
        "from detect.cli import main\n"
        "rc = main(['--help'])\n"
        "assert rc == 0, rc\n"
        "heavy = [m for m in ('torch', 'torchvision', 'matplotlib', 'cv2', 'skimage') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "HEAVY []" in out.stdout, out.stdout
