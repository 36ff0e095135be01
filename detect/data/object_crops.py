"""Object-centric training views for the regression rung (``model.global_pool.train_view``).

Localization networks of the "classify and localize" kind (AlexNet/OverFeat on
ImageNet CLS-LOC) are trained on images that each show one dominant object, so
the class label and the one box name the same thing. A detection image with
several objects breaks that: "the class of the largest of six objects" is a
poor label for a whole-image classifier (measured on the synthetic demo data,
docs/ladder.md). So, for this rung only, each training sample can show ONE of
the image's (non-difficult) objects, drawn uniformly, and is trained on it alone:

* ``crop``: a window with the image's aspect ratio that holds the whole object,
  which fills a fraction ``f`` of it (along its tighter side; ``f`` uniform in
  ``[fraction_min, fraction_max]``, the window capped at the image) at a uniformly
  random position; of :data:`CANDIDATES` such windows, the one where the other
  objects show least (the largest visible area of another object, relative to the
  chosen one's) is kept. The window is cut out; the detector's transform then
  resizes it to the input size, as it resizes any image, so the object appears
  larger than at test time.
* ``window``: the same window, left in place in an image of the original size, at
  the image's own scale; everything outside it is the ImageNet mean colour, which
  the transform's normalisation maps to 0, the value it pads batches with.
* ``erase``: the whole image, with the other objects' boxes (outside the chosen
  object's box) filled with that mean colour.

Test images are unchanged: the whole image, one box. The draw is a pure
function of ``(seed, stream position)`` (the batch plan's position,
detect/data/training.py), so a resumed run sees the views an uninterrupted run sees.
"""

from __future__ import annotations

import numpy as np

VIEWS = ("image", "crop", "window", "erase")
CANDIDATES = 8  # windows drawn per sample; the least cluttered is kept
MEAN_RGB = np.array([0.485, 0.456, 0.406])  # ImageNet mean: 0 after the transform's normalisation, as its padding


def _intersection(boxes: np.ndarray, window: np.ndarray) -> np.ndarray:
    """(N,) areas of (N, 4) boxes inside one (4,) window."""
    w = np.clip(np.minimum(boxes[:, 2], window[2]) - np.maximum(boxes[:, 0], window[0]), 0, None)
    h = np.clip(np.minimum(boxes[:, 3], window[3]) - np.maximum(boxes[:, 1], window[1]), 0, None)
    return w * h


def draw_window(box: np.ndarray, width: int, height: int, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """(4,) integer window ``[x0, y0, x1, y1]`` with the image's aspect ratio holding ``box`` whole.

    ``box`` fills ``fraction`` of the window along its tighter side, unless that window would not
    fit in the image (then the window is the largest that does: the image) or would cut the box.
    """
    need = max((box[2] - box[0]) / width, (box[3] - box[1]) / height)  # window scale that just holds the box
    scale = float(np.clip(need / fraction, need, 1.0))
    win_w, win_h = min(width, max(1, int(np.ceil(scale * width)))), min(height, max(1, int(np.ceil(scale * height))))
    # the window's left edge: inside the image, and left of the box's left edge, with the box's right edge inside
    lo_x, hi_x = max(0, int(np.ceil(box[2])) - win_w), min(int(np.floor(box[0])), width - win_w)
    lo_y, hi_y = max(0, int(np.ceil(box[3])) - win_h), min(int(np.floor(box[1])), height - win_h)
    x0 = int(rng.integers(lo_x, hi_x + 1)) if hi_x >= lo_x else max(0, min(width - win_w, int(box[0])))
    y0 = int(rng.integers(lo_y, hi_y + 1)) if hi_y >= lo_y else max(0, min(height - win_h, int(box[1])))
    return np.array([x0, y0, x0 + win_w, y0 + win_h], np.int64)


def _pixels(box: np.ndarray) -> tuple[slice, slice]:
    """The (rows, columns) a float box covers (x2/y2 exclusive, partly covered pixels included)."""
    return slice(int(box[1]), int(np.ceil(box[3]))), slice(int(box[0]), int(np.ceil(box[2])))


class ObjectCrops:
    """``views(image, boxes, labels, position) -> (image, (1, 4) box, (1,) label)``: one object's view.

    ``image`` H x W x 3 uint8, ``boxes`` (N, 4) float32 pixels, ``labels`` (N,); an image without
    objects is returned unchanged. ``position`` is the sample's place in the batch plan's stream.
    """

    def __init__(self, seed: int, fraction_min: float, fraction_max: float, view: str = "crop",
                 candidates: int = CANDIDATES):
        if not 0 < fraction_min <= fraction_max <= 1:
            raise ValueError(f"crop fractions need 0 < min <= max <= 1, not {fraction_min}, {fraction_max}")
        if view not in VIEWS[1:]:
            raise ValueError(f"unknown view {view!r} ({', '.join(VIEWS[1:])})")
        self.seed, self.fraction_min, self.fraction_max = seed, fraction_min, fraction_max
        self.view, self.candidates = view, candidates

    def __call__(self, image: np.ndarray, boxes: np.ndarray, labels: np.ndarray, position: int):
        if len(boxes) == 0:
            return image, boxes, labels
        rng = np.random.default_rng([self.seed, 0x0C809, position])
        pick = int(rng.integers(len(boxes)))
        box, label = boxes[pick:pick + 1], labels[pick:pick + 1]
        fill = (MEAN_RGB * 255).round().astype(image.dtype)
        if self.view == "erase":
            out, keep = np.array(image), np.zeros(image.shape[:2], bool)
            keep[_pixels(box[0])] = True
            for j in range(len(boxes)):
                if j != pick:
                    region = np.zeros_like(keep)
                    region[_pixels(boxes[j])] = True
                    out[region & ~keep] = fill
            return out, box, label
        x0, y0, x1, y1 = (int(v) for v in self._window(image.shape[:2], boxes, pick, rng))
        if self.view == "window":
            out = np.empty_like(image)
            out[...] = fill
            out[y0:y1, x0:x1] = image[y0:y1, x0:x1]
            return out, box, label
        shifted = (box - np.array([x0, y0, x0, y0], box.dtype)).clip(0, [x1 - x0, y1 - y0, x1 - x0, y1 - y0])
        return np.ascontiguousarray(image[y0:y1, x0:x1]), shifted.astype(boxes.dtype), label

    def _window(self, shape: tuple[int, int], boxes: np.ndarray, pick: int, rng: np.random.Generator) -> np.ndarray:
        """The least cluttered of :data:`CANDIDATES` windows around object ``pick``."""
        height, width = shape
        box = boxes[pick].astype(np.float64)
        others = np.delete(boxes, pick, axis=0).astype(np.float64)
        area = max(float((box[2] - box[0]) * (box[3] - box[1])), 1e-6)
        best, best_clutter = None, np.inf
        for _ in range(self.candidates):
            window = draw_window(box, width, height, rng.uniform(self.fraction_min, self.fraction_max), rng)
            clutter = float(_intersection(others, window).max(initial=0.0)) / area
            if clutter < best_clutter:
                best, best_clutter = window, clutter
        return best


def object_crops(config) -> ObjectCrops | None:
    """The views ``config`` asks for: only the regression rung's head (``global_pool``), ``train_view`` not image."""
    pool = config.model.global_pool
    if config.model.region_head != "global_pool" or pool.train_view == "image":
        return None
    return ObjectCrops(config.seed, pool.crop_fraction_min, pool.crop_fraction_max, view=pool.train_view)
