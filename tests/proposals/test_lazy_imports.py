"""The package top level imports nothing heavy: an RPN detector never loads Selective Search's libraries."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO

HEAVY = ("numba", "cv2", "scipy", "skimage")

_PROBE = """
import json, sys
{body}
print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))
"""


def _loaded(body: str) -> list[str]:
    """The heavy modules a fresh interpreter holds after running ``body``."""
    code = _PROBE.format(body=body, heavy=HEAVY)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_importing_the_rpn_loads_no_selective_search_dependencies():
    assert _loaded("import proposals.rpn") == []


def test_building_and_running_a_faster_rcnn_loads_none_either():
    body = ("import torch\n"
            "from detect.config import load_config\n"
            "from detect.build import build_detector\n"
            "m = build_detector(load_config('configs/ladder/faster_rcnn.yaml', ['model.backbone.width=8']), 3).eval()\n"
            "m([torch.rand(3, 64, 64)])")
    assert _loaded(body) == []


def test_the_probe_sees_a_heavy_import():
    """The check above can fail: Selective Search does load them."""
    assert "numba" in _loaded("import proposals.selective_search")
