"""Proposal sources: sliding windows, Selective Search, the RPN, and the proposal cache.

    from proposals import selective_search, sliding_windows
    boxes = selective_search(image_rgb_uint8, mode="fast")   # (N, 4) float32, best first
    windows = sliding_windows(height, width, scales=(32, 64), ratios=(0.5, 1, 2), stride=16)

This package imports nothing from ``detect`` (DESIGN.md import directions).
"""

from proposals.selective_search import selective_search
from proposals.sliding_window import sliding_windows, window_count

__all__ = ["selective_search", "sliding_windows", "window_count"]
