"""The one image loader: every mode converts by its real range, EXIF orientation is honoured, and files whose
header claims too many pixels are refused before anything is decoded."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from eval.errors import InputError
from proposals.images import DEFAULT_MAX_PIXELS, load_image, probe_image
from tests.proposals.image_util import png_header_only


def _save(tmp_path, img: Image.Image, name: str, **kwargs):
    path = tmp_path / name
    img.save(path, **kwargs)
    return path


def _ramp(h: int = 6, w: int = 10) -> np.ndarray:
    """An RGB test pattern whose every pixel differs from its neighbours."""
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 20, y * 30, (x + y) * 10], axis=2).astype(np.uint8)


@pytest.mark.parametrize("mode", ["1", "L", "P", "CMYK"])
def test_plain_modes_convert_to_rgb_like_pillow(tmp_path, mode):
    source = Image.fromarray(_ramp()).convert(mode)
    path = _save(tmp_path, source, f"x_{mode}.{'jpg' if mode == 'CMYK' else 'png'}", **({"quality": 100} if mode == "CMYK" else {}))
    array = load_image(path)
    with Image.open(path) as again:
        expected = np.asarray(again.convert("RGB"))
    assert array.shape == (6, 10, 3) and array.dtype == np.uint8
    np.testing.assert_array_equal(array, expected)


def test_sixteen_bit_grayscale_keeps_its_range_instead_of_turning_white(tmp_path):
    values = np.array([[0, 257, 32896, 65535]], np.uint16)  # 0, 1, 128, 255 in 8 bits
    path = _save(tmp_path, Image.fromarray(values), "depth.png")
    with Image.open(path) as img:
        assert img.mode.startswith("I")  # Pillow's own convert("RGB") would clip these to 255
    array = load_image(path)
    np.testing.assert_array_equal(array[0, :, 0], [0, 1, 128, 255])
    assert (array == array[:, :, :1]).all()  # gray: three equal channels


def test_thirty_two_bit_integer_images_use_the_range_they_hold(tmp_path):
    small = Image.fromarray(np.array([[0, 100, 255]], np.int32), mode="I")
    np.testing.assert_array_equal(load_image(_save(tmp_path, small, "a.tif"))[0, :, 0], [0, 100, 255])
    wide = Image.fromarray(np.array([[0, 65535, 1000]], np.int32), mode="I")
    np.testing.assert_array_equal(load_image(_save(tmp_path, wide, "b.tif"))[0, :, 0], [0, 255, 4])
    signed = Image.fromarray(np.array([[-1000, 0, 1000]], np.int32), mode="I")
    np.testing.assert_array_equal(load_image(_save(tmp_path, signed, "c.tif"))[0, :, 0], [0, 128, 255])


def test_float_images_in_unit_range_scale_to_255(tmp_path):
    unit = Image.fromarray(np.array([[0.0, 0.5, 1.0, np.nan]], np.float32), mode="F")
    np.testing.assert_array_equal(load_image(_save(tmp_path, unit, "f.tif"))[0, :, 0], [0, 128, 255, 0])
    big = Image.fromarray(np.array([[-2.0, 0.0, 2.0]], np.float32), mode="F")
    np.testing.assert_array_equal(load_image(_save(tmp_path, big, "g.tif"))[0, :, 0], [0, 128, 255])


@pytest.mark.parametrize("mode", ["LA", "RGBA"])
def test_alpha_is_composited_over_white(tmp_path, mode):
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0, 0] = (10, 20, 30, 255)  # opaque: kept
    rgba[0, 1] = (10, 20, 30, 0)  # transparent: white
    rgba[1, 0] = (0, 0, 0, 128)  # half transparent black: mid gray
    image = Image.fromarray(rgba, "RGBA").convert(mode)
    array = load_image(_save(tmp_path, image, f"a_{mode}.png"))
    assert tuple(array[0, 1]) == (255, 255, 255)
    assert 120 <= array[1, 0, 0] <= 135
    expected = (10, 20, 30) if mode == "RGBA" else (18,) * 3  # LA keeps Pillow's luma of (10, 20, 30)
    assert tuple(array[0, 0]) == expected


def test_palette_transparency_is_composited_over_white(tmp_path):
    image = Image.new("P", (2, 1))
    image.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    image.putpixel((0, 0), 0)
    image.putpixel((1, 0), 1)
    path = _save(tmp_path, image, "p.png", transparency=0)
    array = load_image(path)
    assert tuple(array[0, 0]) == (255, 255, 255) and tuple(array[0, 1]) == (0, 0, 255)


@pytest.mark.parametrize("orientation, turn", [(3, 2), (6, -1), (8, 1)])
def test_exif_orientation_is_applied_and_probe_agrees(tmp_path, orientation, turn):
    pixels = _ramp(6, 10)
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = _save(tmp_path, Image.fromarray(pixels), "phone.png", exif=exif.tobytes())
    array = load_image(path)
    np.testing.assert_array_equal(array, np.rot90(pixels, turn))  # EXIF 6: rotate 90 degrees clockwise
    assert probe_image(path) == (array.shape[1], array.shape[0])


def test_a_decompression_bomb_is_refused_from_its_header(tmp_path):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_header_only(100_000, 100_000))
    assert bomb.stat().st_size < 100
    for read in (load_image, probe_image):
        with pytest.raises(InputError) as info:
            read(bomb)
        assert str(info.value.path) == str(bomb) and "pixel limit" in str(info.value)


def test_the_pixel_limit_is_configurable(tmp_path):
    path = _save(tmp_path, Image.fromarray(_ramp(60, 100)), "big.png")
    assert load_image(path).shape == (60, 100, 3)
    with pytest.raises(InputError, match="6,000 pixels, over the 5,000-pixel limit"):
        load_image(path, max_pixels=5000)
    assert DEFAULT_MAX_PIXELS < 12000 * 12000  # a 140 KB PNG of 12000x12000 is refused by default


def test_truncated_missing_and_non_image_files_name_the_file(tmp_path):
    good = _save(tmp_path, Image.fromarray(_ramp(64, 64)), "t.jpg", quality=95)
    truncated = tmp_path / "cut.jpg"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    assert probe_image(truncated) == (64, 64)  # the header is intact ...
    with pytest.raises(InputError, match="corrupt image"):  # ... the pixels are not
        load_image(truncated)
    with pytest.raises(InputError, match="not found"):
        load_image(tmp_path / "nope.jpg")
    text = tmp_path / "notes.png"
    text.write_text("hello")
    with pytest.raises(InputError, match="not an image"):
        probe_image(text)
