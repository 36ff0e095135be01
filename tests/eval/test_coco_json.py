"""The plain-form results scanner: the same arrays as json + float for every number form, None for anything else."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from eval.coco_json import read_plain_results

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "coco_val2014_sample"


def _reference(data: bytes):
    rows = json.loads(data)
    return (np.array([r["image_id"] for r in rows], np.int64), np.array([r["category_id"] for r in rows], np.int64),
            np.array([r["bbox"] for r in rows], np.float64).reshape(-1, 4), np.array([r["score"] for r in rows], float))


def _same(data: bytes) -> None:
    got = read_plain_results(data)
    assert got is not None
    for mine, ref in zip(got, _reference(data)):
        assert mine.dtype == ref.dtype and mine.shape == ref.shape
        assert np.array_equal(mine.view(np.int64), ref.view(np.int64))  # bit for bit, -0.0 included


def test_the_real_sample_reads_bit_for_bit():
    _same((SAMPLE / "results.json").read_bytes())


def test_every_number_form_rounds_as_python_float():
    rng = np.random.default_rng(0)
    numbers = ["0", "-0", "0.0", "-0.0", "1", "12", "0.5", "1e3", "1E+3", "2.5e-3", "-7.25", "0.30000000000000004",
               "123456789012345678901234", "1.7976931348623157e308", "5e-324", "9007199254740993", "0.1e-30",
               "100000000000000000000000.5", "3.141592653589793238462643383279", "4.35", "0.0000001"]
    numbers += [repr(float(x)) for x in rng.uniform(0, 1000, 300)]  # shortest round-trip, up to 17 digits
    numbers += [f"{x:.{rng.integers(0, 8)}f}" for x in rng.uniform(-50, 700, 300)]
    rows = []
    for k in range(0, len(numbers) - 4, 5):
        box, score = numbers[k:k + 4], numbers[k + 4]
        rows.append(f'{{"score": {score}, "bbox": [{", ".join(box)}], "category_id": {k % 7}, "image_id": {-k}}}')
    _same(("[" + ",\n ".join(rows) + "]").encode())


@pytest.mark.parametrize("text", [
    '[]', ' [ ] ', '[{"image_id":1,"category_id":2,"bbox":[1,2,3,4],"score":1}]',
    '\t[ {"bbox" : [ 1 , 2 , 3 , 4 ] ,\r\n "score" : 0.5 , "image_id" : 7 , "category_id" : 9 } ]\n',
])
def test_whitespace_and_key_order(text):
    _same(text.encode())


@pytest.mark.parametrize("text", [
    '{"image_id": 1}',  # not a list
    '[{"image_id": 1, "category_id": 2, "bbox": [1, 2, 3, 4]}]',  # no score
    '[{"image_id": 1, "category_id": 2, "bbox": [1, 2, 3, 4], "score": 1, "id": 5}]',  # another key
    '[{"image_id": "1", "category_id": 2, "bbox": [1, 2, 3, 4], "score": 1}]',  # a string id
    '[{"image_id": 1.0, "category_id": 2, "bbox": [1, 2, 3, 4], "score": 1}]',  # a float id
    '[{"image_id": 1, "category_id": 2, "bbox": [1, 2, 3], "score": 1}]',  # three box numbers
    '[{"image_id": 1, "category_id": 2, "bbox": [1, 2, 3, 4], "score": NaN}]',
    '[{"image_id": 1, "category_id": 2, "bbox": [1, 2, 3, 4], "score": 1, "score": 2}]',  # twice
    '[{"image_id": 1, "category_id": 2, "bbox": [1, 2, 3, 4], "score": 1}',  # truncated
    '[{"image_id": 1, "category_id": 2, "bbox": [1, 2, 3, 4], "score": 1}] x',  # trailing garbage
    '[{"image\\u005fid": 1, "category_id": 2, "bbox": [1, 2, 3, 4], "score": 1}]',  # an escape
    '[{"image_id": 1, "category_id": 2, "bbox": [1, 2, 3, 4], "score": .5}]',
    '[{"image_id": true, "category_id": 2, "bbox": [1, 2, 3, 4], "score": 1}]',
])
def test_anything_else_is_left_to_the_general_path(text):
    assert read_plain_results(text.encode()) is None


def test_numba_starts_without_importing_scipy_and_scipy_still_imports():
    import subprocess
    import sys

    code = ("import sys\n"
            "from eval.coco_json import read_plain_results\n"
            "assert read_plain_results(b'[]')[0].shape == (0,)\n"
            "print('SCIPY', 'scipy.linalg' in sys.modules)\n"
            "import scipy.linalg.cython_blas\n"
            "print('LATER OK')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         cwd=Path(__file__).resolve().parents[2])
    assert "SCIPY False" in out.stdout and "LATER OK" in out.stdout, out.stdout + out.stderr
