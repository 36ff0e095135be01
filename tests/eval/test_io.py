"""Result and ground-truth files: round trips, the devkit's 1-based convention, and bad input named precisely."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from eval.errors import InputError
from eval.file_eval import evaluate_files
from eval.result_files import (read_coco_ground_truth, read_coco_results, read_voc_ground_truth, read_voc_results,
                     voc_result_path, write_coco_results, write_voc_results)

CLASSES = ["cat", "dog", "potted_plant"]


@pytest.fixture
def voc_root(tmp_path, make_voc_root):
    return make_voc_root(tmp_path / "voc", {
        "000001": [("cat", 1, 1, 10, 10, False), ("dog", 20, 20, 40, 30, True)],
        "000002": [],
        "000003": [("cat", 5, 5, 5, 5, False)],  # a one-pixel box: xmin == xmax is valid
    }, CLASSES)


def _dets(rng, n):
    x1 = rng.integers(0, 100, (n, 2)).astype(float) + rng.choice([0.0, 0.5], (n, 2))
    return {"boxes": np.concatenate([x1, x1 + rng.integers(1, 50, (n, 2))], 1), "scores": rng.random(n),
            "labels": rng.integers(0, len(CLASSES), n)}


def test_voc_ground_truth_uses_the_xml_reader_convention(voc_root):
    truth = read_voc_ground_truth(voc_root, "test")
    assert truth.image_ids == ["000001", "000002", "000003"] and truth.class_names == tuple(CLASSES)
    np.testing.assert_array_equal(truth.gts[0]["boxes"], [[0, 0, 10, 10], [19, 19, 40, 30]])
    np.testing.assert_array_equal(truth.gts[0]["difficult"], [False, True])
    np.testing.assert_array_equal(truth.gts[2]["boxes"], [[4, 4, 5, 5]])


def test_voc_results_round_trip(voc_root, tmp_path):
    rng = np.random.default_rng(0)
    ids = ["000001", "000002", "000003"]
    dets = [_dets(rng, 7), _dets(rng, 0), _dets(rng, 5)]
    dets[0]["labels"][:] = 0  # leaves class 2 without detections in image 0
    paths = write_voc_results(tmp_path / "res", "test", ids, dets, CLASSES)
    assert [p.name for p in paths] == [f"comp4_det_test_{c}.txt" for c in CLASSES]
    first = voc_result_path(tmp_path / "res", "test", "cat").read_text().splitlines()[0].split()
    assert first[0] == "000001" and float(first[2]) == dets[0]["boxes"][0, 0] + 1  # xmin = x1 + 1
    assert float(first[4]) == dets[0]["boxes"][0, 2]  # xmax = x2
    back, found = read_voc_results(tmp_path / "res", "test", ids, CLASSES)
    assert found == CLASSES
    for d, b in zip(dets, back):
        order = np.lexsort((np.arange(len(d["labels"])), d["labels"]))  # files group detections by class
        np.testing.assert_array_equal(b["boxes"], d["boxes"][order])
        np.testing.assert_array_equal(b["scores"], d["scores"][order])
        np.testing.assert_array_equal(b["labels"], d["labels"][order])


def test_empty_class_file_is_ap_zero_and_other_splits_are_ignored(voc_root, tmp_path):
    res = tmp_path / "res"
    res.mkdir()
    (res / "comp4_det_test_dog.txt").write_text("")
    (res / "comp4_det_test_cat.txt").write_text("000001 0.9 1 1 10 10\n000003 0.8 5 5 5 5\n")
    (res / "comp4_det_train_cat.txt").write_text("garbage that would fail to parse\n")
    r = evaluate_files(voc_root, res, "voc07", split="test")
    assert r.per_class == {"cat": pytest.approx(1.0), "dog": None}  # dog: only a difficult object


@pytest.mark.parametrize("newline, extra", [("\n", ""), ("\r\n", ""), ("\n", "\x0c")])
def test_result_lines_with_any_whitespace_read_alike(voc_root, tmp_path, newline, extra):
    # tabs, repeated spaces, blank lines and CRLF take the vectorised pass; a form feed the careful one
    lines = ["000001 0.5 1 1 10 10", "", "000003\t0.25   5 5 5.5 6" + extra, "  000001 1e-1 2 2 3 3  ", ""]
    res = _res_dir(tmp_path, newline.join(lines))
    dets, _ = read_voc_results(res, "test", ["000001", "000002", "000003"], CLASSES)
    np.testing.assert_array_equal(dets[0]["scores"], [0.5, 0.1])
    np.testing.assert_array_equal(dets[0]["boxes"], [[0, 0, 10, 10], [1, 1, 3, 3]])
    np.testing.assert_array_equal(dets[0]["order"], [1, 4])  # line numbers: the devkit's tie order
    np.testing.assert_array_equal(dets[2]["boxes"], [[4, 4, 5.5, 6]])
    assert len(dets[1]["scores"]) == 0


@pytest.mark.parametrize("files, message", [
    ([], "no comp4_det_test_<class>.txt result file for split 'test': the folder holds no comp4_det_*.txt files"),
    (["comp4_det_train_cat.txt", "comp4_det_val_potted_plant.txt"], "only for split(s) 'train', 'val'; pass --split"),
    (["comp4_det_test_person.txt", "notes.txt"], "its files (comp4_det_test_person.txt) name none of the dataset's "
                                                 "classes (cat, dog, potted_plant)"),
])
def test_a_folder_with_no_result_file_for_the_split_is_refused_not_scored_zero(voc_root, tmp_path, files, message):
    res = tmp_path / "res"
    res.mkdir()
    for name in files:
        (res / name).write_text("000001 0.9 1 1 10 10\n")
    with pytest.raises(InputError) as info:
        evaluate_files(voc_root, res, "voc12", split="test")
    assert str(info.value).startswith(f"{res}: ") and message in str(info.value), str(info.value)


def test_a_class_without_a_file_has_ap_zero_when_another_class_has_one(voc_root, tmp_path):
    res = tmp_path / "res"
    res.mkdir()
    (res / "comp4_det_test_dog.txt").write_text("")
    r = evaluate_files(voc_root, res, "voc12", split="test")
    assert r.per_class == {"cat": 0.0, "dog": None} and r.mAP == 0.0


def test_coco_results_round_trip(tmp_path, make_coco):
    gt, _ = make_coco(3)
    (tmp_path / "gt.json").write_bytes(orjson.dumps(gt))
    truth = read_coco_ground_truth(tmp_path / "gt.json")
    assert truth.image_ids == sorted(truth.image_ids) and truth.category_ids == sorted(truth.category_ids)
    assert len(truth.gts) == len(gt["images"])  # images without objects are kept
    rng = np.random.default_rng(1)
    dets = [_dets(rng, int(rng.integers(0, 6))) for _ in truth.image_ids]
    for d in dets:
        d["labels"] = d["labels"] % len(truth.category_ids)
    write_coco_results(tmp_path / "res.json", truth.image_ids, dets, truth.category_ids)
    rows = orjson.loads((tmp_path / "res.json").read_bytes())
    assert {r["category_id"] for r in rows} <= set(truth.category_ids)
    back = read_coco_results(tmp_path / "res.json", truth.image_ids, truth.category_ids)
    for d, b in zip(dets, back):
        np.testing.assert_allclose(b["boxes"], d["boxes"], rtol=0, atol=1e-12)
        np.testing.assert_array_equal(b["scores"], d["scores"])
        np.testing.assert_array_equal(b["labels"], d["labels"])


# ---------------------------------------------------------------- bad input: one InputError naming file, line, id
def _res_dir(tmp_path, text, name="comp4_det_test_cat.txt"):
    res = tmp_path / "res"
    res.mkdir(exist_ok=True)
    (res / name).write_text(text)
    return res


@pytest.mark.parametrize("text, expected", [
    ("000001 0.9 1 1 10\n", "line 1: expected 6 fields"),
    ("000001 0.9 1 1 10 10\n\n000001 0.9 1 1 10 10 7\n", "line 3: expected 6 fields"),
    ("000001 high 1 1 10 10\n", "line 1: not a number"),
    ("000001 0.5 1 1 10 10\n000001 nan 1 1 10 10\n", "line 2: NaN or infinite"),
    ("000001 0.5 1 1 inf 10\n", "line 1: NaN or infinite"),
    ("000001 0.5 10 1 9 10\n", "line 1: inverted box"),
    ("000001 0.5 1 10 10 9\n", "line 1: inverted box"),
    ("000001 0.5 1 1 10 10\n000009 0.5 1 1 10 10\n", "line 2: image id '000009' is not in the split"),
])
def test_bad_voc_result_lines(voc_root, tmp_path, text, expected):
    res = _res_dir(tmp_path, text)
    with pytest.raises(InputError) as err:
        evaluate_files(voc_root, res, "voc12", split="test")
    assert err.value.path.endswith("comp4_det_test_cat.txt") and expected in str(err.value)


def test_bad_voc_ground_truth(voc_root, tmp_path):
    res = _res_dir(tmp_path, "")
    with pytest.raises(InputError, match="split file not found"):
        evaluate_files(voc_root, res, "voc07", split="val")
    (voc_root / "ImageSets" / "Main" / "test.txt").write_text("000001\n000004\n")
    with pytest.raises(InputError, match=r"000004\.xml: annotation file not found"):
        evaluate_files(voc_root, res, "voc07")
    (voc_root / "ImageSets" / "Main" / "test.txt").write_text("000001\n")
    (voc_root / "Annotations" / "000001.xml").write_text("<annotation><object><name>cat</name>")
    with pytest.raises(InputError, match=r"000001\.xml: malformed XML"):
        evaluate_files(voc_root, res, "voc07")


def _coco_pair(tmp_path, gt, results):
    g, r = tmp_path / "gt.json", tmp_path / "res.json"
    g.write_bytes(gt if isinstance(gt, bytes) else orjson.dumps(gt))
    r.write_bytes(results if isinstance(results, bytes) else orjson.dumps(results))
    return g, r


@pytest.mark.parametrize("mutate, file, expected", [
    (lambda gt, res: (gt, orjson.dumps(res)[:-20]), "res.json", "malformed or truncated JSON"),
    (lambda gt, res: (orjson.dumps(gt)[:50], res), "gt.json", "malformed or truncated JSON"),
    (lambda gt, res: (gt, [{**res[0], "bbox": [1, 1, 0, 5]}]), "res.json", "detection 1 (image id"),
    (lambda gt, res: (gt, [res[0], {**res[1], "bbox": [1, 1, 5, -2]}]), "res.json", "detection 2 (image id"),
    (lambda gt, res: (gt, [{**res[0], "image_id": 987654}]), "res.json", "image id 987654 is not in the ground truth"),
    (lambda gt, res: (gt, [{**res[0], "category_id": 99}]), "res.json", "category id 99 is not in the ground truth"),
    (lambda gt, res: (gt, orjson.dumps([res[1], {**res[0], "score": 12345.5}]).replace(b"12345.5", b"NaN")),
     "res.json", "detection 2 (image id"),  # Python's json writes NaN; refused as NaN, not as bad JSON
    (lambda gt, res: (gt, orjson.dumps([{**res[0], "bbox": [1, 2, 12345.5, 3]}]).replace(b"12345.5", b"Infinity")),
     "res.json", "NaN or infinite"),
    (lambda gt, res: (gt, [{**res[0], "score": "high"}]), "res.json", "detection 1: score must be a number"),
    (lambda gt, res: (gt, [{k: v for k, v in res[0].items() if k != "bbox"}]), "res.json", "missing 'bbox'"),
    (lambda gt, res: ({**gt, "annotations": [{**gt["annotations"][0], "image_id": 424242}]}, res), "gt.json",
     "annotation 1: image id 424242 is not in 'images'"),
    (lambda gt, res: ({**gt, "annotations": [{**gt["annotations"][0], "bbox": [0, 0, 0, 4]}]}, res), "gt.json",
     "w <= 0 or h <= 0"),
    # 7 and "7": numpy would make both strings; pycocotools keeps them apart -> refused, first odd id named
    (lambda gt, res: (gt, [res[0], {**res[1], "image_id": str(res[1]["image_id"])}]), "res.json",
     "image ids mix integers and strings: '{r1}' (detection 2)"),
    (lambda gt, res: (gt, [res[0], res[1], {**res[2], "category_id": str(res[2]["category_id"])}]), "res.json",
     "category ids mix integers and strings: '{r2c}' (detection 3)"),
    (lambda gt, res: ({**gt, "images": gt["images"][:2] + [{**gt["images"][2], "id": str(gt["images"][2]["id"])}]
                       + gt["images"][3:]}, res),
     "gt.json", "image ids mix integers and strings: '{g2}' ('images' entry 3)"),
    (lambda gt, res: ({**gt, "annotations": [{**a, "image_id": str(a["image_id"])} if k == 1 else a
                                             for k, a in enumerate(gt["annotations"])]}, res), "gt.json",
     "image ids mix integers and strings: '{a1}' (annotation 2)"),
    (lambda gt, res: (gt, [{**r, "image_id": str(r["image_id"])} for r in res]), "res.json",
     "is not in the ground truth (whose ids are integers"),
])
def test_bad_coco_files(tmp_path, make_coco, mutate, file, expected):
    gt, res = make_coco(5, num_images=6)
    expected = expected.format(r1=res[1]["image_id"], r2c=res[2]["category_id"], g2=gt["images"][2]["id"],
                               a1=gt["annotations"][1]["image_id"])
    g, r = _coco_pair(tmp_path, *mutate(gt, res))
    with pytest.raises(InputError) as err:
        evaluate_files(g, r, "coco")
    assert err.value.path.endswith(file) and expected in str(err.value), str(err.value)
