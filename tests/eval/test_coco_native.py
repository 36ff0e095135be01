"""The C kernels (eval/coco_native.c) against the numba ones and pycocotools: the same arrays, bit for bit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from eval.coco_ap import coco_precision_recall
from eval.coco_engine import kernels, read_plain_results
from eval.coco_io import read_coco_ground_truth, read_coco_results_flat
from tests.eval.test_coco_ap import pycocotools_arrays

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "tests" / "data" / "coco_val2014_sample"
native = pytest.importorskip("eval.coco_native").load()
pytestmark = pytest.mark.skipif(native is None, reason="no C compiler here: the numba kernels run instead")


def _arrays(gt_path, res_path, engine):
    truth = read_coco_ground_truth(gt_path, per_image=False)
    dets = read_coco_results_flat(res_path, truth.image_ids, truth.category_ids, engine=engine)
    return coco_precision_recall(truth.flat, dets, len(truth.image_ids), len(truth.class_names), engine=engine)


@pytest.mark.parametrize("case", ["sample", "random", "crowds", "capped", "many_images"])
def test_native_and_numba_give_pycocotools_arrays_bit_for_bit(coco_files, case):
    """Both engines, every cell; big enough that matching and accumulation run in several threads."""
    gt_path, res_path = {
        "sample": lambda: (SAMPLE / "instances.json", SAMPLE / "results.json"),
        "random": lambda: coco_files(21),
        "crowds": lambda: coco_files(22, num_images=30, crowd_rate=0.5),
        "capped": lambda: coco_files(23, max_per_pair=150),
        "many_images": lambda: coco_files(24, num_images=400, num_cats=6),
    }[case]()
    ref_p, ref_r = pycocotools_arrays(gt_path, res_path)
    for engine in ("native", "numba"):
        p, r = _arrays(gt_path, res_path, engine)[:2]
        np.testing.assert_array_equal(p, ref_p, err_msg=engine)
        np.testing.assert_array_equal(r, ref_r, err_msg=engine)


def test_default_engine_is_native():
    assert kernels() is native


def test_scan_in_parts_equals_one_scan():
    data = (SAMPLE / "results.json").read_bytes()
    whole = native.scan(data, parts=1)
    for parts in (2, 3, 7):
        for a, b in zip(whole, native.scan(data, parts=parts)):
            assert np.array_equal(a, b)
    assert native.scan(b"[]", parts=3)[0].shape == (0, 2)
    assert native.scan(b'[{"image_id": 1, "x": {"image_id": 2}}]', parts=3) is None


def test_native_scanner_reads_what_the_numba_one_reads():
    rng = np.random.default_rng(0)
    rows = [f'{{"image_id": {i}, "category_id": {i % 5}, "bbox": [{x!r}, {x / 3!r}, 1e-3, 12345678901234567890], '
            f'"score": {rng.random():.{i % 19}f}}}' for i, x in enumerate(rng.uniform(-5, 700, 400).tolist())]
    data = ("[" + ",".join(rows) + "]").encode()
    for a, b in zip(read_plain_results(data, "native"), read_plain_results(data, "numba")):
        assert a.dtype == b.dtype and np.array_equal(a.view(np.int64), b.view(np.int64))
    assert read_plain_results(b'[{"image_id":1,"category_id":1,"bbox":[1,1,1,1],"score":1e400}]', "native") is None


def test_radix_sort_is_numpys_stable_descending_argsort():
    rng = np.random.default_rng(1)
    scores = np.concatenate([rng.random(5000), np.round(rng.random(5000), 2), [0.0, -0.0, -1.5, 1e-300, -0.0, 0.0]])
    np.testing.assert_array_equal(native.argsort_descending(scores), np.argsort(-scores, kind="stable"))


def test_plain_eval_command_line_imports_neither_typer_nor_numba(tmp_path):
    """The plain ``eval --gt --dets`` route imports neither Typer nor numba."""
    code = ("import sys\n"
            "from detect.cli import main\n"
            f"rc = main(['eval', '--gt', {str(SAMPLE / 'instances.json')!r}, '--dets', "
            f"{str(SAMPLE / 'results.json')!r}, '--protocol', 'coco', '--json', {str(tmp_path / 'o.json')!r}])\n"
            "print('RC', rc, 'LOADED', [m for m in ('typer', 'numba', 'pydantic', 'torch') if m in sys.modules])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert "RC 0 LOADED []" in out.stdout, out.stdout + out.stderr


def test_a_shuffled_results_file_givespycocotools_arrays(tmp_path):
    """Detections not listed image by image (the sort's other branch), equal scores in a new file order."""
    import json

    rows = json.loads((SAMPLE / "results.json").read_text())
    order = np.random.default_rng(5).permutation(len(rows))
    res = tmp_path / "shuffled.json"
    res.write_text(json.dumps([rows[i] for i in order]))
    ref_p, ref_r = pycocotools_arrays(SAMPLE / "instances.json", res)
    for engine in ("native", "numba"):
        p, r = _arrays(SAMPLE / "instances.json", res, engine)[:2]
        np.testing.assert_array_equal(p, ref_p, err_msg=engine)
        np.testing.assert_array_equal(r, ref_r, err_msg=engine)


def test_results_finished_in_c_equal_the_numpy_path(coco_files):
    """finish_results (coco_native_post.c) against the numpy code it replaces; a bad row falls back to it."""
    gt_path, res_path = coco_files(31, num_images=40)
    truth = read_coco_ground_truth(gt_path, per_image=False)

    class NumpyOnly:  # the native kernels without the C finishing step
        def __getattr__(self, name):
            if name in ("finish_results", "pooled_order"):
                raise AttributeError(name)
            return getattr(native, name)

    fast = read_coco_results_flat(res_path, truth.image_ids, truth.category_ids, engine="native")
    slow = read_coco_results_flat(res_path, truth.image_ids, truth.category_ids, engine=NumpyOnly())
    for field in ("image", "label", "boxes", "scores", "order", "box_area"):
        a, b = getattr(fast, field), getattr(slow, field)
        assert a.dtype == b.dtype and np.array_equal(a, b), field
    assert native.finish_results(np.array([[1, 1]]), np.array([[0.0, 0, 1, 0, 0.5]]), np.array([0]), 1,
                                 np.array([0]), 1) is None  # h = 0
    assert native.finish_results(np.array([[2, 1]]), np.array([[0.0, 0, 1, 1, 0.5]]), np.array([0]), 1,
                                 np.array([0]), 1) is None  # image id 2 unknown


def test_pooled_order_is_a_stable_sort_by_descending_score():
    rng = np.random.default_rng(3)
    for trial in range(20):
        num_classes = int(rng.integers(1, 9))
        labels = np.sort(rng.integers(0, num_classes, int(rng.integers(0, 300))))
        scores = rng.choice([0.0, -0.0, 0.25, 0.5, 0.75, 1.0, 1e-300], len(labels)) if trial % 2 else rng.random(
            len(labels))
        rows = np.concatenate([np.flatnonzero(labels == k)[np.argsort(-scores[labels == k], kind="stable")]
                               for k in range(num_classes)] + [np.zeros(0, np.int64)]).astype(np.int64)
        class_start = np.searchsorted(labels, np.arange(num_classes + 1)).astype(np.int64)
        expected = rows[np.argsort(-scores[rows], kind="stable")]
        assert np.array_equal(native.pooled_order(rows, class_start, scores), expected)
