"""Crop-and-warp against a direct crop + resize of a known image."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from detect.ops.crop_warp import add_context, crop_and_warp


def _image(h=40, w=56, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).random((h, w, 3)).astype(np.float32)


def _to_tensor(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(img).permute(2, 0, 1).unsqueeze(0).contiguous()  # (1, 3, H, W)


def test_integer_box_at_its_own_size_returns_the_pixels():
    img = _image()
    out = crop_and_warp(_to_tensor(img), [torch.tensor([[10.0, 5.0, 26.0, 21.0]])], output_size=16)
    expected = img[5:21, 10:26].transpose(2, 0, 1)
    np.testing.assert_allclose(out[0].numpy(), expected, atol=1e-6)


@pytest.mark.parametrize("box", [(8, 4, 40, 28), (3, 10, 51, 22), (20, 0, 30, 40)])
@pytest.mark.parametrize("size", [8, 13, 32])
def test_matches_cv2_resize_of_the_crop(box, size):
    """Inside the image, a crop equals cv2.resize(INTER_LINEAR) of that region of the whole image."""
    img = _image()
    x1, y1, x2, y2 = box
    out = crop_and_warp(_to_tensor(img), [torch.tensor([box], dtype=torch.float32)], output_size=size)
    # Oracle: the affine map cv2.resize uses (half-pixel centres), applied to the whole image so
    # pixels just outside the crop are read as roi_align reads them.
    sx, sy = (x2 - x1) / size, (y2 - y1) / size
    m = np.array([[sx, 0, x1 + 0.5 * sx - 0.5], [0, sy, y1 + 0.5 * sy - 0.5]], dtype=np.float64)
    ref = cv2.warpAffine(img, m, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                         borderMode=cv2.BORDER_REPLICATE)
    np.testing.assert_allclose(out[0].numpy().transpose(1, 2, 0), ref, atol=1e-4)
    if sx >= 1 and sy >= 1 and (x2 - x1) % size == 0 and (y2 - y1) % size == 0:
        plain = cv2.resize(img[y1:y2, x1:x2], (size, size), interpolation=cv2.INTER_LINEAR)
        np.testing.assert_allclose(out[0].numpy().transpose(1, 2, 0), plain, atol=1e-4)


def test_context_pad_puts_the_box_on_the_central_pixels():
    """With pad p, the original box fills the central S - 2p pixels of the warped crop."""
    img = _image(64, 64)
    box = torch.tensor([[16.0, 16.0, 48.0, 48.0]])  # 32 px box
    size, pad = 24, 4  # the box lands on the central 16 px: a 2x downscale
    padded = crop_and_warp(_to_tensor(img), [box], output_size=size, context_pad=pad)
    inner = crop_and_warp(_to_tensor(img), [box], output_size=size - 2 * pad)
    torch.testing.assert_close(padded[:, :, pad:-pad, pad:-pad], inner, atol=1e-5, rtol=0)
    np.testing.assert_allclose(add_context(box, size, pad).numpy(), [[8.0, 8.0, 56.0, 56.0]])


def test_context_outside_the_image_is_zero():
    img = np.ones((32, 32, 3), np.float32)
    box = torch.tensor([[0.0, 0.0, 16.0, 16.0]])  # at the corner: the context is off the image
    out = crop_and_warp(_to_tensor(img), [box], output_size=16, context_pad=4)[0, 0]
    assert torch.all(out[:4] == 0) and torch.all(out[:, :4] == 0)
    assert torch.all(out[4:, 4:] == 1)


def test_batch_of_images_keeps_box_order_and_handles_empty_lists():
    a, b = _image(seed=1), _image(seed=2)
    images = torch.cat([_to_tensor(a), _to_tensor(b)])
    boxes = [torch.tensor([[0.0, 0.0, 8.0, 8.0]]), torch.tensor([[8.0, 8.0, 16.0, 16.0], [0.0, 0.0, 8.0, 8.0]])]
    out = crop_and_warp(images, boxes, output_size=8)
    assert out.shape == (3, 3, 8, 8)
    np.testing.assert_allclose(out[0].numpy(), a[:8, :8].transpose(2, 0, 1), atol=1e-6)
    np.testing.assert_allclose(out[1].numpy(), b[8:16, 8:16].transpose(2, 0, 1), atol=1e-6)
    np.testing.assert_allclose(out[2].numpy(), b[:8, :8].transpose(2, 0, 1), atol=1e-6)
    empty = crop_and_warp(images, [torch.zeros((0, 4)), torch.zeros((0, 4))], output_size=8)
    assert empty.shape == (0, 3, 8, 8)
