"""R-CNN's crop-and-warp as one batched tensor operation.

R-CNN (Girshick et al., 2014, appendix A) cuts every region proposal out of
the image and warps it, whatever its aspect ratio, to the fixed square input
of the network. Before warping, the box is dilated so that the warped crop
holds ``context_pad`` pixels of image context on each side *at the warped
scale* (the paper: 16 px of a 227 px input). Context that falls outside the
image is filled with the mean image value; our images are already
mean-normalised by the detector's transform, so that value is 0.

Both steps are ``torchvision.ops.roi_align`` on the image tensor with one
bilinear sample per output pixel (``sampling_ratio=1``, ``aligned=True``):
output pixel ``(i, j)`` of a crop of box ``(x1, y1, x2, y2)`` samples the image
at ``(x1 + (j + 0.5) * w / S - 0.5, y1 + (i + 0.5) * h / S - 0.5)``, which is
exactly what ``cv2.resize(crop, (S, S), interpolation=INTER_LINEAR)`` samples.
No Python loop over boxes.

Shapes: images (N, C, H, W) float -> crops (sum_i P_i, C, S, S) float.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchvision.ops import roi_align


def add_context(boxes: Tensor, output_size: int, context_pad: float) -> Tensor:
    """Dilate (P, 4) boxes so that, warped to ``output_size``, they carry ``context_pad`` px of context.

    The original box must land on the central ``output_size - 2 * context_pad``
    pixels of the warped crop, so each side grows by the factor
    ``output_size / (output_size - 2 * context_pad)`` around the box centre
    (the R-CNN code's ``scale``). The result is not clipped to the image.
    """
    if context_pad <= 0:
        return boxes
    inner = output_size - 2.0 * context_pad
    if inner <= 0:
        raise ValueError(f"context_pad {context_pad} leaves no room in a {output_size} px crop")
    scale = output_size / inner
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2  # (P, 2)
    half = (boxes[:, 2:] - boxes[:, :2]) / 2 * scale  # (P, 2)
    return torch.cat([centre - half, centre + half], dim=1)


def crop_and_warp(
    images: Tensor, boxes: list[Tensor], output_size: int, context_pad: float = 0.0
) -> Tensor:
    """Cut every box out of its image and warp it to ``output_size`` x ``output_size``.

    Args:
        images: (N, C, H, W) float tensor (already normalised).
        boxes: N tensors of shape (P_i, 4), ``[x1, y1, x2, y2]`` in the pixel
            coordinates of ``images`` (x2/y2 exclusive).
        output_size: side S of the square crops.
        context_pad: pixels of context per side at the warped scale (R-CNN: 16 of 227).

    Returns:
        (sum_i P_i, C, S, S) crops, in the order of ``boxes``, same dtype/device as ``images``.
        Parts of a dilated box outside the image read as 0 (the mean after normalisation).
    """
    if len(boxes) != images.shape[0]:
        raise ValueError(f"{len(boxes)} box lists for {images.shape[0]} images")
    rois = [add_context(b.to(images.dtype), output_size, context_pad) for b in boxes]
    total = sum(r.shape[0] for r in rois)
    if total == 0:
        return images.new_zeros((0, images.shape[1], output_size, output_size))
    out = roi_align(images, rois, output_size=(output_size, output_size), spatial_scale=1.0,
                    sampling_ratio=1, aligned=True)
    # roi_align clamps samples within half a pixel outside the image to the
    # border pixel and zeroes those further out (torchvision's bilinear rule);
    # R-CNN fills all context outside the image with the mean, i.e. 0 here.
    return out * _inside_mask(rois, images.shape[-2:], output_size, images)


def _inside_mask(rois: list[Tensor], hw, size: int, like: Tensor) -> Tensor:
    """(sum P, 1, S, S) mask: 1 where an output pixel's sample point lies inside the image."""
    r = torch.cat(rois)  # (P, 4)
    steps = (torch.arange(size, device=like.device, dtype=like.dtype) + 0.5) / size  # (S,)
    xs = r[:, 0:1] + steps * (r[:, 2:3] - r[:, 0:1]) - 0.5  # (P, S) sample x per column
    ys = r[:, 1:2] + steps * (r[:, 3:4] - r[:, 1:2]) - 0.5  # (P, S) sample y per row
    h, w = int(hw[0]), int(hw[1])
    # A sample is "inside" when it is within the pixel-centre span, plus the
    # half pixel at each border that bilinear interpolation still reads.
    in_x = (xs >= -0.5) & (xs <= w - 0.5)
    in_y = (ys >= -0.5) & (ys <= h - 0.5)
    return (in_y[:, :, None] & in_x[:, None, :]).unsqueeze(1).to(like.dtype)
