"""Worker processes must not deadlock when the caller has already used OpenCV's thread pool.

A forked child inherits the parent's thread-pool locks held; training (which decodes and
resizes with OpenCV threads) then hung forever filling the proposal cache.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_parallel_cache_fill_after_opencv_threads_ran(synth_root, tmp_path):
    script = textwrap.dedent(
        f"""
        import cv2, numpy as np
        from pathlib import Path
        cv2.setNumThreads(2)
        big = np.random.default_rng(0).integers(0, 255, (1500, 1500, 3), dtype=np.uint8)
        for _ in range(3):
            cv2.GaussianBlur(cv2.resize(big, (1000, 1000)), (9, 9), 3)
        from proposals.cache import get_proposals
        from eval.voc_annotations import read_split
        root = Path({str(synth_root)!r})
        items = [(i, root / "JPEGImages" / f"{{i}}.jpg") for i in read_split(root, "test")[:6]]
        result = get_proposals({str(tmp_path / "cache")!r}, "selective_search", {{"mode": "fast"}}, items, workers=2)
        assert cv2.getNumThreads() == 2  # the caller's setting is restored
        print("computed", result.computed)
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "computed 6" in out.stdout
