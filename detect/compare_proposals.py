"""What ``compare`` measures of each variant's proposal source: the boxes shared between variants, and their recall.

* :class:`ProposalMemo` computes a test image's precomputed proposals (Selective Search) once and
  shares them between variants (R-CNN and Fast R-CNN read the same boxes), keeping the wall and CPU
  seconds measured when they were computed.
* :func:`proposal_recall_row` gives a variant's proposal source, as its region head sees it (after
  the source's own top-n), recall against the number of boxes: average recall over IoU 0.5:0.05:0.95
  (Hosang et al., TPAMI 2016: it tracks detection mAP where recall at 0.5 does not) and recall at 0.5
  and 0.7 (:func:`eval.proposal_recall.average_recall_curve`). Variants with the same source get the
  same ``key``, so the report shows each source once; a trained RPN is its variant's own source.
"""

from __future__ import annotations

import json
import time

import numpy as np


class ProposalMemo:
    """Test-time proposals computed once per (method, parameters, image) and shared by variants.

    R-CNN and Fast R-CNN read the same Selective Search boxes: the second variant
    reuses the boxes and reports the seconds measured when they were computed.
    """

    def __init__(self):
        self._store: dict = {}

    def get(self, config, index: int, image) -> tuple[list | None, list | None]:
        from detect.proposal_route import image_proposals, spec_key

        spec = spec_key(config)
        if spec is None:
            return None, None
        if (spec, index) not in self._store:
            cpu = time.process_time()
            boxes, seconds = image_proposals(config, [image])
            self._store[(spec, index)] = boxes[0], seconds[0], time.process_time() - cpu
        boxes, seconds, _ = self._store[(spec, index)]
        return [boxes], [seconds]

    def cpu_seconds(self, config, index: int) -> float:
        """Process CPU seconds spent computing this image's proposals (0 for rungs without precomputed ones)."""
        from detect.proposal_route import spec_key

        spec = spec_key(config)
        return 0.0 if spec is None else self._store[(spec, index)][2]


def proposal_source(config, variant: str) -> tuple[str, str, bool] | None:
    """(label, key, ranked) of ``config``'s proposal source; None for the whole image (nothing to recall).

    ``key`` is equal for variants whose sources give the same boxes; ``ranked`` is False for sliding
    windows, which come in a fixed grid order rather than best first.
    """
    kind = config.model.proposals
    if kind == "precomputed":
        from detect.proposal_route import precomputed_spec

        spec = precomputed_spec(config)
        name = "Selective Search" if spec.method == "selective_search" else spec.method.replace("_", " ")
        mode = spec.params.get("mode")
        label = f"{name} ({mode})" if mode else name
        return label, spec.key + f"|top{config.model.precomputed.top_n_test}", True
    if kind == "windows":
        win = config.model.windows
        return "sliding windows", json.dumps(["windows", list(win.scales), list(win.ratios), win.stride]), False
    if kind == "rpn":
        return f"RPN of {variant}", f"rpn|{variant}", True
    return None


def proposal_recall_row(model, config, dataset, memo: ProposalMemo, variant: str) -> dict | None:
    """The variant's proposal recall on every image of ``dataset`` (eval-mode ``model``), or None."""
    import torch

    from detect.data.tensors import to_tensor
    from eval.proposal_recall import average_recall_curve

    source = proposal_source(config, variant)
    if source is None:
        return None
    label, key, ranked = source
    device = next(model.parameters()).device
    boxes, gts, difficult = [], [], []
    for i in range(len(dataset)):
        image, ann = dataset[i]
        props, _ = memo.get(config, i, image)
        given = None if props is None else [torch.as_tensor(np.asarray(props[0], np.float32), device=device)]
        boxes.append(model.propose([to_tensor(image).to(device)], given)[0].cpu().double().numpy())
        gts.append(ann.boxes)
        difficult.append(ann.difficult)
    curve = average_recall_curve(gts, boxes, difficult=difficult)
    return {"source": label, "key": key, "ranked": ranked, **curve}
