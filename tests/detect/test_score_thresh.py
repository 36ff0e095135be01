"""The score threshold is a post-processing argument of one call, honoured by every region head."""

from __future__ import annotations

import numpy as np
import pytest

from detect.build import build_detector
from detect.config import load_config
from detect.inference import run_detector
from tests.conftest import REPO


@pytest.mark.parametrize("rung", ["regression", "sliding_window", "faster_rcnn"])
def test_run_detector_keeps_only_scores_above_the_threshold_it_is_given(rung):
    config = load_config(REPO / "configs" / "ladder" / f"{rung}.yaml",
                         ["model.backbone.width=8", "test.score_thresh=0.0", "model.windows.stride=32"])
    model = build_detector(config, 3).eval()
    image = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    (every,), _ = run_detector(model, config, [image])
    assert len(every["scores"]) > 0
    cut = float(np.median(every["scores"])) - 1e-6
    (kept,), _ = run_detector(model, config, [image], score_thresh=cut)
    assert len(kept["scores"]) and (kept["scores"] > cut).all()
    assert len(kept["scores"]) == int((every["scores"] > cut).sum())
    (none,), _ = run_detector(model, config, [image], score_thresh=1.0)
    assert len(none["scores"]) == 0
    assert model.region_head.score_thresh == 0.0  # the model itself is left as configured
