"""``--backend pycocotools``: the oracle's numbers through our command, and its failures as one line with exit 2."""

from __future__ import annotations

import orjson
import pytest

from detect.cli import main
from eval.errors import InputError
from eval.file_eval import evaluate_files


def _files(tmp_path, gt, res):
    g, r = tmp_path / "gt.json", tmp_path / "res.json"
    g.write_bytes(orjson.dumps(gt))
    r.write_bytes(orjson.dumps(res))
    return g, r


def test_backends_agree_on_a_clean_corpus(tmp_path, make_coco):
    g, r = _files(tmp_path, *make_coco(3, num_images=8))
    ours = evaluate_files(g, r, "coco")
    ref = evaluate_files(g, r, "coco", backend="pycocotools")
    assert ours.stats == pytest.approx(ref.stats, abs=1e-12) and ours.per_class == pytest.approx(ref.per_class)


def test_a_pycocotools_failure_names_the_file(tmp_path, make_coco):
    gt, res = make_coco(3, num_images=4)
    for a in gt["annotations"]:
        del a["area"]  # we default it to w * h; pycocotools' evaluate needs it
    g, r = _files(tmp_path, gt, res)
    assert evaluate_files(g, r, "coco").stats is not None
    with pytest.raises(InputError) as err:
        evaluate_files(g, r, "coco", backend="pycocotools")
    assert err.value.path.endswith("gt.json")
    assert "pycocotools could not evaluate it (KeyError: 'area')" in str(err.value)


@pytest.mark.parametrize("backend", ["ours", "pycocotools"])
def test_mixed_string_and_integer_ids_exit_2_with_one_line(tmp_path, make_coco, capsys, backend):
    gt, res = make_coco(4, num_images=4)
    res[1]["image_id"] = str(res[1]["image_id"])
    g, r = _files(tmp_path, gt, res)
    assert main(["eval", "--gt", str(g), "--dets", str(r), "--protocol", "coco", "--backend", backend]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err
    assert err.startswith("detladder: error: ") and "res.json: image ids mix integers and strings: " in err
