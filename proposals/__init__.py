"""Proposal sources: sliding windows, Selective Search, the RPN, and the proposal cache.

    from proposals.selective_search import selective_search
    from proposals.sliding_window import sliding_windows, window_count
    boxes = selective_search(image_rgb_uint8, mode="fast")   # (N, 4) float32, best first
    windows = sliding_windows(height, width, scales=(32, 64), ratios=(0.5, 1, 2), stride=16)

Import each source from its own module: this package's top level imports nothing,
so that building a detector with an RPN (``proposals.rpn``) does not load the
numba, OpenCV and SciPy that Selective Search needs. This package imports nothing
from ``detect`` (docs/architecture.md, import directions).
"""
