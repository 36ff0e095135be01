"""VOCDataset: images on demand, bad entries skipped with a reason (or raised), summaries."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from detect.data.voc import VOCDataset, load_image
from eval.errors import InputError


@pytest.fixture
def damaged_root(synth_root, tmp_path):
    """A copy of the synthetic train split with one corrupt image, one missing image and one bad XML."""
    root = tmp_path / "voc"
    shutil.copytree(synth_root, root)
    ids = (root / "ImageSets" / "Main" / "train.txt").read_text().split()
    jpeg = root / "JPEGImages" / f"{ids[0]}.jpg"
    jpeg.write_bytes(jpeg.read_bytes()[:300])  # truncated
    (root / "JPEGImages" / f"{ids[1]}.jpg").unlink()
    (root / "Annotations" / f"{ids[2]}.xml").write_text("<annotation><object>")
    return root, ids


def test_skip_reports_every_bad_entry_and_keeps_the_rest(damaged_root):
    root, ids = damaged_root
    ds = VOCDataset(root, "train", on_error="skip", check_images=True)
    assert len(ds) == len(ids) - 3
    assert ids[0] not in ds.image_ids and ids[1] not in ds.image_ids and ids[2] not in ds.image_ids
    messages = sorted(str(p) for p in ds.problems)
    assert any(f"{ids[0]}.jpg: corrupt image" in m for m in messages)
    assert any(f"{ids[1]}.jpg: image file not found" in m for m in messages)
    assert any(f"{ids[2]}.xml: malformed XML" in m for m in messages)
    assert ds.summary()["skipped_images"] == 3


def test_raise_mode_stops_at_the_first_bad_entry(damaged_root):
    root, ids = damaged_root
    with pytest.raises(InputError, match=f"{ids[0]}.jpg"):
        VOCDataset(root, "train", on_error="raise", check_images=True)


def test_without_image_checks_only_the_xml_is_read(damaged_root):
    root, ids = damaged_root
    ds = VOCDataset(root, "train", on_error="skip", check_images=False)
    assert len(ds) == len(ids) - 1
    with pytest.raises(InputError, match="corrupt image"):
        ds[ds.image_ids.index(ids[0])]


def test_image_size_mismatch_is_a_problem(synth_root, tmp_path):
    root = tmp_path / "voc"
    shutil.copytree(synth_root, root)
    first = (root / "ImageSets" / "Main" / "test.txt").read_text().split()[0]
    xml = root / "Annotations" / f"{first}.xml"
    xml.write_text(xml.read_text().replace("<width>128</width>", "<width>256</width>"))
    ds = VOCDataset(root, "test", check_images=True)
    assert "image is 128x128 but its annotation says 256x128" in str(ds.problems[0])


def test_load_image_converts_grayscale_and_refuses_non_images(tmp_path):
    from PIL import Image

    gray = tmp_path / "g.png"
    Image.fromarray(np.full((5, 7), 200, np.uint8)).save(gray)
    array = load_image(gray)
    assert array.shape == (5, 7, 3) and array.dtype == np.uint8 and array[0, 0, 0] == 200
    text = tmp_path / "t.jpg"
    text.write_text("not a jpeg")
    with pytest.raises(InputError, match="t.jpg: not an image file"):
        load_image(text)


def test_summary_counts(synth_root):
    ds = VOCDataset(synth_root, "train")
    s = ds.summary()
    assert s["images"] == 16
    assert sum(s["objects"].values()) == sum(len(a.labels) for a in ds.annotations)
    assert sum(s["difficult"].values()) == sum(int(a.difficult.sum()) for a in ds.annotations)
    assert s["box_side_px"]["min"] <= s["box_side_px"]["median"] <= s["box_side_px"]["max"]
