"""The proposal cache: keying by parameters and image content, resume, corrupt entries, parallel runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from eval.errors import InputError
from proposals.cache import compute_proposals, get_proposals, normalize_params

SW = {"scales": [16.0, 32.0], "ratios": [1.0], "stride": 8.0}


@pytest.fixture
def images(tmp_path) -> list[tuple[str, Path]]:
    """Six small JPEGs with a few flat rectangles each."""
    rng = np.random.default_rng(0)
    items = []
    for i in range(6):
        img = np.full((64, 80, 3), 200, np.uint8)
        for _ in range(3):
            x, y = rng.integers(0, 50, 2)
            img[y:y + 14, x:x + 20] = rng.integers(0, 255, 3)
        path = tmp_path / "img" / f"im{i}.jpg"
        path.parent.mkdir(exist_ok=True)
        cv2.imwrite(str(path), img)
        items.append((f"im{i}", path))
    return items


def test_second_run_reads_the_cache_with_the_stored_seconds(tmp_path, images):
    first = get_proposals(tmp_path / "c", "selective_search", {}, images, workers=1)
    assert (first.computed, first.reused) == (6, 0)
    again = get_proposals(tmp_path / "c", "selective_search", {"mode": "fast"}, images, workers=1)
    assert (again.computed, again.reused) == (0, 6)
    for image_id, _ in images:
        np.testing.assert_array_equal(again.boxes[image_id], first.boxes[image_id])
        assert again.seconds[image_id] == first.seconds[image_id] > 0
    img = cv2.cvtColor(cv2.imread(str(images[0][1])), cv2.COLOR_BGR2RGB)
    boxes, _ = compute_proposals(img, "selective_search", {})
    np.testing.assert_array_equal(boxes, first.boxes["im0"])


def test_parallel_workers_give_the_same_boxes(tmp_path, images):
    one = get_proposals(tmp_path / "a", "selective_search", {"seed": 3}, images, workers=1)
    two = get_proposals(tmp_path / "b", "selective_search", {"seed": 3}, images, workers=2)
    for image_id, _ in images:
        np.testing.assert_array_equal(one.boxes[image_id], two.boxes[image_id])


def test_other_parameters_are_refused_naming_the_parameter(tmp_path, images):
    get_proposals(tmp_path / "c", "sliding_window", SW, images[:1], workers=1)
    with pytest.raises(InputError, match=r"stride=8\.0, not stride=4\.0"):
        get_proposals(tmp_path / "c", "sliding_window", {**SW, "stride": 4.0}, images[:1])
    with pytest.raises(InputError, match="method 'sliding_window'"):
        get_proposals(tmp_path / "c", "selective_search", {}, images[:1])
    with pytest.raises(ValueError, match="unknown parameter"):
        normalize_params("selective_search", {"colour": "hsv"})


def test_changed_image_is_recomputed_and_missing_entry_refused(tmp_path, images):
    cache = tmp_path / "c"
    get_proposals(cache, "selective_search", {}, images[:2], workers=1)
    with pytest.raises(InputError, match="no cache entry"):
        get_proposals(cache, "selective_search", {}, images[:3], compute=False)
    cv2.imwrite(str(images[0][1]), np.zeros((30, 30, 3), np.uint8))  # the image changes
    with pytest.raises(InputError, match="stale"):
        get_proposals(cache, "selective_search", {}, images[:2], compute=False)
    result = get_proposals(cache, "selective_search", {}, images[:2], workers=1)
    assert (result.computed, result.reused) == (1, 1)
    assert "stale" in result.problems[0]
    assert result.boxes["im0"][:, 2].max() <= 30


def test_corrupt_entry_is_reported_and_recomputed(tmp_path, images):
    cache = tmp_path / "c"
    ref = get_proposals(cache, "sliding_window", SW, images[:2], workers=1)
    (cache / "im1.npz").write_bytes(b"not a zip file")
    result = get_proposals(cache, "sliding_window", SW, images[:2], workers=1)
    assert (result.computed, result.reused) == (1, 1)
    assert "im1.npz" in result.problems[0] and "corrupt" in result.problems[0]
    np.testing.assert_array_equal(result.boxes["im1"], ref.boxes["im1"])


@pytest.mark.parametrize("workers", [1, 2])
def test_unreadable_image_is_an_input_error(tmp_path, images, workers):
    bad = tmp_path / "img" / "bad.jpg"
    bad.write_bytes(b"garbage")
    with pytest.raises(InputError, match="bad.jpg: not an image file"):
        get_proposals(tmp_path / "c", "sliding_window", SW, [*images[:2], ("bad", bad)], workers=workers)
    with pytest.raises(InputError, match="missing.jpg: cannot read"):
        get_proposals(tmp_path / "c", "sliding_window", SW, [("m", tmp_path / "missing.jpg")])


KILL_SCRIPT = """
import sys
from proposals.cache import get_proposals
items = [(f"im{i}", sys.argv[2]) for i in range(400)]
get_proposals(sys.argv[1], "selective_search", {"mode": "quality"}, items, workers=1)
"""


def test_resume_after_kill(tmp_path, images):
    cache = tmp_path / "c"
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(cache), str(images[0][1])])
    try:
        deadline = time.time() + 60
        while len(list(cache.glob("*.npz"))) < 2 and time.time() < deadline:
            time.sleep(0.05)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    done = sorted(p.stem for p in cache.glob("*.npz"))
    assert 2 <= len(done) < 400
    for path in cache.glob("*.npz"):  # a kill never leaves a half-written entry under its final name
        with np.load(path) as data:
            assert data["boxes"].shape[1] == 4
    items = [(f"im{i}", images[0][1]) for i in range(len(done) + 1)]
    result = get_proposals(cache, "selective_search", {"mode": "quality"}, items, workers=1)
    assert (result.reused, result.computed) == (len(done), 1) and not result.problems


def test_cached_boxes_are_computed_on_the_loaders_pixels(tmp_path):
    """A phone photo stored sideways (EXIF orientation 6): the cache sees the upright image that training and
    ``detect`` see, so its boxes equal the boxes computed from ``load_image``'s array."""
    from PIL import Image

    from proposals.images import load_image

    rng = np.random.default_rng(1)
    img = np.full((48, 96, 3), 220, np.uint8)
    for _ in range(4):
        x, y = rng.integers(0, 70, 1)[0], rng.integers(0, 30, 1)[0]
        img[y:y + 12, x:x + 20] = rng.integers(0, 255, 3)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "phone.png"
    Image.fromarray(img).save(path, exif=exif.tobytes())
    upright = load_image(path)
    assert upright.shape == (96, 48, 3)
    cached = get_proposals(tmp_path / "c", "selective_search", {}, [("phone", path)], workers=1).boxes["phone"]
    direct, _ = compute_proposals(upright, "selective_search", {})
    np.testing.assert_array_equal(cached, direct)
    assert cached[:, 2].max() <= 48 and cached[:, 3].max() <= 96  # in the upright frame
