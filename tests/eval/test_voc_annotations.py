"""The VOC XML reader: real files' quirks, the box convention, and every bad input refused clearly."""

from __future__ import annotations

import time

import numpy as np
import pytest

from eval.errors import InputError
from eval.voc_annotations import VOC_CLASSES, parse_annotation, read_class_names, read_split, read_voc_annotations

# A person with <part> children (as in VOC's person-layout files), extra fields everywhere,
# float coordinates (as in some VOC2012 files) and an object with no <difficult> tag.
REAL_QUIRKS = """<annotation>
  <folder>VOC2012</folder>
  <filename>2008_000008.jpg</filename>
  <source><database>The VOC2008 Database</database><annotation>PASCAL VOC2008</annotation><image>flickr</image></source>
  <size><width>500</width><height>442</height><depth>3</depth></size>
  <segmented>0</segmented>
  <object>
    <name>horse</name><pose>Left</pose><truncated>0</truncated><occluded>1</occluded>
    <bndbox><xmin>53</xmin><ymin>87</ymin><xmax>471</xmax><ymax>420</ymax></bndbox>
    <difficult>0</difficult>
  </object>
  <object>
    <name>person</name><pose>Unspecified</pose><truncated>1</truncated>
    <bndbox><xmin>158.5</xmin><ymin>44</ymin><xmax>289.25</xmax><ymax>167</ymax></bndbox>
    <part><name>head</name><bndbox><xmin>169</xmin><ymin>50</ymin><xmax>200</xmax><ymax>80</ymax></bndbox></part>
    <part><name>hand</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax></bndbox></part>
  </object>
  <object>
    <name>dog</name><difficult>1</difficult>
    <bndbox><xmin>10</xmin><ymin>10</ymin><xmax>10</xmax><ymax>12</ymax></bndbox>
  </object>
</annotation>
"""


def _xml(tmp_path, text, name="a.xml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _one_object(box=("10", "10", "20", "20"), name="cat", size=(100, 100), extra=""):
    x1, y1, x2, y2 = box
    return (
        f"<annotation><filename>x.jpg</filename><size><width>{size[0]}</width><height>{size[1]}</height></size>"
        f"<object><name>{name}</name>{extra}<bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax>"
        f"<ymax>{y2}</ymax></bndbox></object></annotation>"
    )


def test_real_voc_quirks_are_read(tmp_path):
    ann = parse_annotation(_xml(tmp_path, REAL_QUIRKS), VOC_CLASSES)
    assert ann.filename == "2008_000008.jpg" and (ann.width, ann.height) == (500, 442)
    assert [VOC_CLASSES[i] for i in ann.labels] == ["horse", "person", "dog"]
    # x1 = xmin - 1, x2 = xmax; the person's <part> boxes are not objects and do not leak in.
    np.testing.assert_array_equal(ann.boxes[0], [52, 86, 471, 420])
    np.testing.assert_array_equal(ann.boxes[1], [157.5, 43, 289.25, 167])
    # xmin == xmax is a valid one-pixel-wide box in VOC's inclusive convention.
    np.testing.assert_array_equal(ann.boxes[2], [9, 9, 10, 12])
    assert ann.difficult.tolist() == [False, False, True]  # missing <difficult> means 0
    assert ann.boxes.dtype == np.float64 and ann.labels.dtype == np.int64


def test_plain_iou_on_converted_boxes_equals_the_devkit_plus_one_iou(tmp_path):
    from eval.iou import box_iou

    a, b = (11, 21, 50, 60), (30, 25, 70, 61)  # 1-based inclusive integers
    ann_a = parse_annotation(_xml(tmp_path, _one_object(tuple(map(str, a))), "a.xml"), ("cat",))
    ann_b = parse_annotation(_xml(tmp_path, _one_object(tuple(map(str, b))), "b.xml"), ("cat",))
    iw = min(a[2], b[2]) - max(a[0], b[0]) + 1
    ih = min(a[3], b[3]) - max(a[1], b[1]) + 1
    area = lambda r: (r[2] - r[0] + 1) * (r[3] - r[1] + 1)  # noqa: E731
    devkit = iw * ih / (area(a) + area(b) - iw * ih)
    assert box_iou(ann_a.boxes, ann_b.boxes)[0, 0] == pytest.approx(devkit, abs=1e-15)


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("<annotation><object><name>cat</name>", "malformed XML"),
        (_one_object(name="unicorn"), "object 1 (unicorn): unknown class name 'unicorn'"),
        (_one_object(box=("20", "10", "10", "20")), "object 1 (cat): inverted box"),
        (_one_object(box=("11", "10", "10", "20")), "object 1 (cat): zero-area box"),
        (_one_object(box=("10", "10", "140", "20")), "lies outside the 100x100 image"),
        (_one_object(box=("10", "ten", "20", "20")), "<ymin> is not a number"),
        (_one_object(box=("10", "nan", "20", "20")), "<ymin> is not finite"),
        (_one_object(extra="<difficult>2</difficult>"), "<difficult> must be 0 or 1"),
        ("<html/>", "expected <annotation>"),
    ],
)
def test_bad_annotations_name_the_file_and_object(tmp_path, text, fragment):
    path = _xml(tmp_path, text)
    with pytest.raises(InputError) as info:
        parse_annotation(path, VOC_CLASSES)
    message = str(info.value)
    assert message.startswith(str(path)) and fragment in message
    assert "\n" not in message


def test_billion_laughs_is_refused_without_expanding(tmp_path):
    lol = "".join(f'<!ENTITY lol{i} "{"&lol%d;" % (i - 1) * 10}">' for i in range(1, 10))
    text = f'<?xml version="1.0"?><!DOCTYPE annotation [<!ENTITY lol0 "lol">{lol}]><annotation>&lol9;</annotation>'
    start = time.perf_counter()
    with pytest.raises(InputError, match="refused unsafe XML"):
        parse_annotation(_xml(tmp_path, text), VOC_CLASSES)
    assert time.perf_counter() - start < 1.0


def test_external_entity_is_refused_and_not_read(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    text = (
        f'<?xml version="1.0"?><!DOCTYPE annotation [<!ENTITY xxe SYSTEM "file://{secret}">]>'
        "<annotation><filename>&xxe;</filename></annotation>"
    )
    with pytest.raises(InputError, match="refused unsafe XML") as info:
        parse_annotation(_xml(tmp_path, text), VOC_CLASSES)
    assert "TOP-SECRET" not in str(info.value)


def test_split_and_class_list(tmp_path):
    (tmp_path / "ImageSets" / "Main").mkdir(parents=True)
    (tmp_path / "ImageSets" / "Main" / "val.txt").write_text("001\n\n002  1\n003 -1\n")
    assert read_split(tmp_path, "val") == ["001", "002", "003"]
    with pytest.raises(InputError, match="split file not found"):
        read_split(tmp_path, "test")
    assert read_class_names(tmp_path) == VOC_CLASSES
    (tmp_path / "classes.txt").write_text("cat\ndog\n")
    assert read_class_names(tmp_path) == ("cat", "dog")
    (tmp_path / "classes.txt").write_text("cat\ncat\n")
    with pytest.raises(InputError, match="names a class twice"):
        read_class_names(tmp_path)


def test_skip_mode_collects_one_problem_per_bad_file(tmp_path):
    (tmp_path / "ImageSets" / "Main").mkdir(parents=True)
    (tmp_path / "Annotations").mkdir()
    (tmp_path / "ImageSets" / "Main" / "train.txt").write_text("good\nbad\nmissing\n")
    _xml(tmp_path / "Annotations", _one_object(), "good.xml")
    _xml(tmp_path / "Annotations", _one_object(name="unicorn"), "bad.xml")
    anns, problems = read_voc_annotations(tmp_path, "train", ("cat",), on_error="skip")
    assert [a.image_id for a in anns] == ["good"]
    assert len(problems) == 2
    assert "bad.xml" in problems[0].file and "unknown class" in problems[0].message
    assert "missing.xml" in problems[1].file and "not found" in problems[1].message
    with pytest.raises(InputError, match="bad.xml"):
        read_voc_annotations(tmp_path, "train", ("cat",), on_error="raise")


def test_input_errors_survive_pickling_across_worker_processes():
    import pickle

    error = pickle.loads(pickle.dumps(InputError("a/b.xml", "object 2 (cat): inverted box")))
    assert isinstance(error, InputError)
    assert (error.path, error.detail, str(error)) == ("a/b.xml", "object 2 (cat): inverted box", "a/b.xml: object 2 (cat): inverted box")
