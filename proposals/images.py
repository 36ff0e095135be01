"""The one image loader: every path that reads pixels (training, ``detect``, ``eval --config``, ``compare``
and the proposal cache) decodes through :func:`load_image`, so Selective Search's cached boxes live in exactly
the frame and the pixels that the detector sees.

It lives in ``proposals/`` because both ``proposals/`` and ``detect/`` may import it (``eval/`` reads no pixels).

Rules, in order:

* **Size first, from the header.** A file whose header claims more than ``max_pixels`` (default
  :data:`DEFAULT_MAX_PIXELS`, ``data.max_image_pixels`` in a config) is refused before anything is decoded:
  a 69-byte PNG can claim 100000x100000 pixels. Pillow's own ``DecompressionBombError`` (an ``Exception``,
  not an ``OSError``) is turned into the same one-line ``InputError``.
* **EXIF orientation is applied** (a phone photo stored sideways is returned upright), as viewers and
  OpenCV's ``IMREAD_COLOR`` do; width and height are those after rotation.
* **Modes convert by the image's real range**, not by clipping: 16-bit (``I;16*``) divides by 257;
  32-bit integer (``I``) is treated as 8-bit when it fits in 0..255, as 16-bit when it fits in 0..65535,
  and is otherwise stretched from its minimum to its maximum; float (``F``) is taken as [0, 1] when it fits
  there, as 0..255 when it fits there, and is otherwise stretched (NaN becomes 0). Alpha (``LA``, ``RGBA``,
  ``PA``, palette transparency) is composited over white, as the image looks on a light page. ``1``,
  ``L``, ``P``, ``CMYK``, ``YCbCr`` go through Pillow's conversion to RGB. Multi-frame files give frame 0.

Pillow is used rather than OpenCV because it raises on truncated files instead of printing a warning and
returning half a picture.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from eval.errors import InputError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")

# 100 megapixels: a 108 MP phone sensor still loads; a 12000x12000 image (144 MP, 432 MB as RGB and several
# GB while converting) is refused. Configurable per call and as ``data.max_image_pixels``.
DEFAULT_MAX_PIXELS = 100_000_000

_EXIF_ORIENTATION = 0x0112
_SWAPS_SIDES = {5, 6, 7, 8}  # EXIF orientations that rotate by 90 degrees


def _open(path: Path, max_pixels: int):
    """Open ``path`` lazily (header only) and check its pixel count; the caller closes it."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(path)
    except FileNotFoundError:
        raise InputError(path, "image file not found") from None
    except IsADirectoryError:
        raise InputError(path, "is a folder, not an image file") from None
    except UnidentifiedImageError:
        raise InputError(path, "not an image file (cannot identify its format)") from None
    except Image.DecompressionBombError:
        raise InputError(path, f"image is larger than the {max_pixels:,}-pixel limit "
                               "(data.max_image_pixels); refusing to decode it") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise InputError(path, f"corrupt image ({exc})") from None
    width, height = img.size
    if width < 1 or height < 1:
        img.close()
        raise InputError(path, f"image has no pixels ({width}x{height})")
    if width * height > max_pixels:
        img.close()
        raise InputError(path, f"image is {width}x{height} = {width * height:,} pixels, over the "
                               f"{max_pixels:,}-pixel limit (data.max_image_pixels); refusing to decode it")
    return img


def _orientation(img) -> int:
    try:
        return int(img.getexif().get(_EXIF_ORIENTATION, 1))
    except Exception:  # noqa: BLE001 - a broken EXIF block means "no rotation", as viewers treat it
        return 1


def probe_image(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[int, int]:
    """(width, height) as :func:`load_image` would return them, from the header only (no pixel decode).

    Raises ``InputError`` for a missing, unidentifiable or over-limit file. A file that is only truncated
    passes here and fails in :func:`load_image`; that is the price of not decoding every image up front.
    """
    path = Path(path)
    img = _open(path, max_pixels)
    try:
        width, height = img.size
        if _orientation(img) in _SWAPS_SIDES:
            width, height = height, width
    finally:
        img.close()
    return width, height


def _stretch(values: np.ndarray) -> np.ndarray:
    """Float array -> uint8 by its own minimum..maximum (a flat image becomes 0)."""
    lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        return np.zeros(values.shape, np.uint8)
    return np.rint((values - lo) * (255.0 / (hi - lo))).astype(np.uint8)


def _gray_to_uint8(img) -> np.ndarray:
    """An HxW uint8 array from a 16-bit, 32-bit integer or float single-channel image."""
    mode = img.mode
    values = np.asarray(img)
    if mode.startswith("I;16"):
        return np.rint(values.astype(np.float64) / 257.0).astype(np.uint8)
    if mode == "F":
        values = np.nan_to_num(values.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        lo, hi = float(values.min()), float(values.max())
        if lo >= 0.0 and hi <= 1.0:
            return np.rint(values * 255.0).astype(np.uint8)
        if lo >= 0.0 and hi <= 255.0:
            return np.rint(values).astype(np.uint8)
        return _stretch(values)
    values = values.astype(np.int64)  # mode "I"
    lo, hi = int(values.min()), int(values.max())
    if lo >= 0 and hi <= 255:
        return values.astype(np.uint8)
    if lo >= 0 and hi <= 65535:
        return np.rint(values / 257.0).astype(np.uint8)
    return _stretch(values.astype(np.float64))


def _to_rgb(img) -> np.ndarray:
    """HxWx3 uint8 RGB from a decoded Pillow image of any mode."""
    from PIL import Image

    mode = img.mode
    if mode == "RGB":
        return np.asarray(img, dtype=np.uint8)
    if mode.startswith("I") or mode == "F":
        gray = _gray_to_uint8(img)
        return np.repeat(gray[:, :, None], 3, axis=2)
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in img.info)
    if has_alpha:
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"), dtype=np.uint8)
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


def load_image(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode an image file into an HxWx3 uint8 RGB array, upright; ``InputError`` naming the file otherwise."""
    from PIL import Image, ImageOps

    path = Path(path)
    img = _open(path, max_pixels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img.load()
            upright = ImageOps.exif_transpose(img) if _orientation(img) != 1 else img
            array = _to_rgb(upright)
    except Image.DecompressionBombError:
        raise InputError(path, f"image is larger than the {max_pixels:,}-pixel limit; refusing to decode it") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise InputError(path, f"corrupt image ({exc})") from None
    finally:
        img.close()
    if array.ndim != 3 or array.shape[2] != 3:
        raise InputError(path, f"unexpected image shape {array.shape}")
    return np.ascontiguousarray(array)
