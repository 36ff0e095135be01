"""Tensor operations the detectors share (crop-and-warp, RoI pooling variants)."""
