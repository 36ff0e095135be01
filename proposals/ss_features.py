"""Selective Search, part 1: colour spaces, per-pixel bins and initial region statistics.

Uijlings et al. (IJCV 2013), section 3. Everything here is computed once per
colour space (per-pixel colour and texture bin indices) or once per
segmentation (region sizes, boxes, histograms, adjacency), and is then shared
by every similarity strategy that runs on that segmentation.

Shapes: an image is (H, W, 3) float32 with every channel scaled to [0, 1]; a
label map is (H, W) int64 with labels 0..R-1; region histograms are (R, D)
float32 rows that sum to 1 (L1-normalised, as in the paper).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy import ndimage

#: The paper's bin counts: 25 colour bins per channel; 10 texture bins per orientation per channel.
COLOUR_BINS = 25
TEXTURE_BINS = 10
#: Gaussian derivatives in eight orientations with sigma 1 (section 3.2, "texture").
TEXTURE_ORIENTATIONS = 8
TEXTURE_SIGMA = 1.0

COLOUR_SPACES = ("rgb", "hsv", "lab", "rgI", "I", "H")


def convert_colour_space(rgb: np.ndarray, space: str) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H, W, C) float32 in [0, 1] per channel, C = 3 or 1.

    Fixed ranges (not per-image min/max) so that a colour means the same bin in
    every image: HSV hue / 360; Lab L / 100 and (a, b + 128) / 255; rgI is
    normalised r = R/(R+G+B), g = G/(R+G+B) and intensity I = (R+G+B)/3.
    """
    f = rgb.astype(np.float32) / 255.0
    if space == "rgb":
        out = f
    elif space in ("hsv", "H"):
        hsv = cv2.cvtColor(f, cv2.COLOR_RGB2HSV)  # H in [0, 360), S and V in [0, 1]
        hsv[..., 0] /= 360.0
        out = hsv if space == "hsv" else hsv[..., :1]
    elif space == "lab":
        lab = cv2.cvtColor(f, cv2.COLOR_RGB2Lab)  # L in [0, 100], a and b in about [-128, 127]
        lab[..., 0] /= 100.0
        lab[..., 1:] = (lab[..., 1:] + 128.0) / 255.0
        out = lab
    elif space in ("rgI", "I"):
        total = f.sum(axis=2, keepdims=True)
        intensity = total / 3.0
        if space == "I":
            out = intensity
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                chroma = np.where(total > 0, f[..., :2] / total, 1.0 / 3.0)
            out = np.concatenate([chroma, intensity], axis=2)
    else:
        raise ValueError(f"unknown colour space {space!r}; choose from {COLOUR_SPACES}")
    return np.ascontiguousarray(np.clip(out, 0.0, 1.0), dtype=np.float32)


def _bin(values: np.ndarray, bins: int) -> np.ndarray:
    """Values in [0, 1] -> bin indices 0..bins-1 (1.0 falls into the last bin), int32."""
    return np.minimum((values * bins).astype(np.int32), bins - 1)


def colour_bins(image: np.ndarray) -> np.ndarray:
    """(H, W, C) float32 in [0, 1] -> (H*W, C) int32 indices into a C*25-bin histogram."""
    h, w, c = image.shape
    idx = _bin(image.reshape(h * w, c), COLOUR_BINS)
    return idx + (np.arange(c, dtype=np.int32) * COLOUR_BINS)[None, :]


def _gaussian_derivative_kernels(sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """1-D Gaussian g and its derivative kernel dg (radius 4 sigma), float32.

    OpenCV filters by correlation (no kernel flip), so the kernel for d/dx is
    ``+x / sigma^2 * g``: a rising intensity gives a positive response.
    """
    r = int(np.ceil(4 * sigma))
    x = np.arange(-r, r + 1, dtype=np.float64)
    g = np.exp(-(x**2) / (2 * sigma**2))
    g /= g.sum()
    dg = x / sigma**2 * g
    return g.astype(np.float32), dg.astype(np.float32)


def texture_bins(image: np.ndarray) -> np.ndarray:
    """(H, W, C) float32 -> (H*W, C*8) int32 indices into a C*8*10-bin texture histogram.

    Per channel, Gaussian derivatives gx, gy (sigma 1) give the directional
    derivative ``cos(t) gx + sin(t) gy`` for eight orientations t = k * 45 deg.
    Opposite orientations are the same line with opposite sign, so each keeps
    only its positive part (light-to-dark and dark-to-light edges stay apart).
    Each (channel, orientation) response is binned into 10 bins over [0, its max
    in this image].
    """
    h, w, c = image.shape
    g, dg = _gaussian_derivative_kernels(TEXTURE_SIGMA)
    half = TEXTURE_ORIENTATIONS // 2
    # sepFilter2D filters every channel at once: (H, W, C) -> (H*W, C).
    gx = cv2.sepFilter2D(image, cv2.CV_32F, dg, g, borderType=cv2.BORDER_REFLECT).reshape(h * w, c)
    gy = cv2.sepFilter2D(image, cv2.CV_32F, g, dg, borderType=cv2.BORDER_REFLECT).reshape(h * w, c)
    out = np.empty((h * w, c, TEXTURE_ORIENTATIONS), np.float32)  # column = channel * 8 + orientation
    for o in range(half):
        t = o * 2 * np.pi / TEXTURE_ORIENTATIONS
        np.add(np.float32(np.cos(t)) * gx, np.float32(np.sin(t)) * gy, out=out[:, :, o])
        # Orientation o + 4 is the same line with the sign flipped.
        np.negative(out[:, :, o], out=out[:, :, o + half])
    out = out.reshape(h * w, c * TEXTURE_ORIENTATIONS)
    top = out.max(axis=0)  # (C*8,) largest response of each channel and orientation
    scale = np.where(top > 0, TEXTURE_BINS / np.where(top > 0, top, 1), 0).astype(np.float32)
    out *= scale  # negatives (the other half-plane) end up in bin 0 after the clip
    np.clip(out, 0, TEXTURE_BINS - 1, out=out)
    idx = out.astype(np.int32)  # truncation = floor for values >= 0
    idx += np.arange(c * TEXTURE_ORIENTATIONS, dtype=np.int32) * TEXTURE_BINS
    return idx


@dataclass
class PixelFeatures:
    """Per-pixel histogram bin indices of one colour space, shared by every k and strategy."""

    colour: np.ndarray  # (H*W, C) int32, values < colour_dim
    texture: np.ndarray  # (H*W, C*8) int32, values < texture_dim
    colour_dim: int
    texture_dim: int


def pixel_features(image: np.ndarray) -> PixelFeatures:
    """(H, W, C) float32 colour-space image -> its per-pixel colour and texture bins."""
    c = image.shape[2]
    return PixelFeatures(
        colour=colour_bins(image),
        texture=texture_bins(image),
        colour_dim=c * COLOUR_BINS,
        texture_dim=c * TEXTURE_ORIENTATIONS * TEXTURE_BINS,
    )


@dataclass
class Regions:
    """Initial regions of one segmentation: what the hierarchical grouping starts from."""

    sizes: np.ndarray  # (R,) float64 pixel counts
    boxes: np.ndarray  # (R, 4) float64 [x1, y1, x2, y2], x2/y2 exclusive
    colour: np.ndarray  # (R, Dc) float32, rows L1-normalised
    texture: np.ndarray  # (R, Dt) float32, rows L1-normalised
    pairs: np.ndarray  # (P, 2) int64 adjacent label pairs, a < b, unique


def region_histograms(labels: np.ndarray, bins: np.ndarray, dim: int, n: int) -> np.ndarray:
    """Label map (H*W,) and per-pixel bins (H*W, K) -> (n, dim) L1-normalised histograms.

    One ``np.bincount`` over ``label * dim + bin``; rows sum to 1 (a region with
    K bins per pixel contributes K counts per pixel before normalisation).
    """
    flat = (labels[:, None] * dim + bins).reshape(-1)
    hist = np.bincount(flat, minlength=n * dim).reshape(n, dim).astype(np.float32)
    hist /= hist.sum(axis=1, keepdims=True)
    return hist


def adjacent_pairs(labels: np.ndarray) -> np.ndarray:
    """(H, W) label map -> (P, 2) int64 unique pairs (a < b) of 4-connected touching labels."""
    n = int(labels.max()) + 1
    keys = []
    for a, b in ((labels[:, :-1], labels[:, 1:]), (labels[:-1, :], labels[1:, :])):
        diff = a != b
        lo = np.minimum(a[diff], b[diff]).astype(np.int64)
        hi = np.maximum(a[diff], b[diff]).astype(np.int64)
        keys.append(lo * n + hi)
    uniq = np.unique(np.concatenate(keys)) if keys else np.zeros(0, np.int64)
    return np.stack([uniq // n, uniq % n], axis=1)


def region_boxes(labels: np.ndarray, n: int) -> np.ndarray:
    """(H, W) label map -> (n, 4) float64 tight boxes, x2/y2 exclusive."""
    boxes = np.zeros((n, 4), np.float64)
    for i, sl in enumerate(ndimage.find_objects(labels + 1, max_label=n)):
        if sl is not None:
            boxes[i] = (sl[1].start, sl[0].start, sl[1].stop, sl[0].stop)
    return boxes


def initial_regions(labels: np.ndarray, feats: PixelFeatures) -> Regions:
    """(H, W) int label map (0..R-1, every label present) -> the regions' statistics."""
    n = int(labels.max()) + 1
    flat = labels.reshape(-1).astype(np.int64)
    return Regions(
        sizes=np.bincount(flat, minlength=n).astype(np.float64),
        boxes=region_boxes(labels, n),
        colour=region_histograms(flat, feats.colour, feats.colour_dim, n),
        texture=region_histograms(flat, feats.texture, feats.texture_dim, n),
        pairs=adjacent_pairs(labels),
    )
