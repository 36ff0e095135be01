"""The one route from a config to its precomputed proposals: every caller goes through here.

    config.model.proposals == "precomputed"
      -> precomputed_spec(config): method + normalised parameters (the method's own defaults
         fill what model.precomputed.params leaves out) + cache directory
      -> split_proposals(config, voc):     the split's boxes from the cache (computed on demand;
                                           under torchrun each rank computes every K-th image)
      -> image_proposals(config, images):  boxes of images outside a dataset (``detladder detect``)

Training, validation and ``eval --config`` read the cache through ``split_proposals``;
``detect`` and ``compare`` compute per image through ``image_proposals`` / ``spec_key``;
``detladder proposals run|eval`` fill a cache through ``cached_proposals``. So one set of
defaults (the proposal functions' signatures, see ``proposals.cache.normalize_params``)
and one cache key serve them all. Parts that make their own proposals (RPN, windows,
whole image) need nothing from here: ``precomputed_spec`` returns None.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from eval.errors import InputError


@dataclass(frozen=True)
class ProposalSpec:
    """What a config's precomputed proposals are: the method, its full keyword arguments, cache options."""

    method: str
    params: dict  # normalised: every keyword argument of the method, defaults filled in
    cache_dir: str | None  # None: <data root>/proposals/<method>-<mode or "default">
    compute: bool  # compute missing cache entries (False: refuse)

    @property
    def key(self) -> str:
        """Identity of the boxes (method and parameters): equal keys give equal boxes for an image."""
        return json.dumps([self.method, self.params], sort_keys=True)

    def cache_for(self, data_root) -> Path:
        if self.cache_dir:
            return Path(self.cache_dir)
        suffix = self.params.get("mode", "default") if self.method == "selective_search" else "default"
        return Path(data_root) / "proposals" / f"{self.method}-{suffix}"


def precomputed_spec(config) -> ProposalSpec | None:
    """The precomputed proposals ``config`` reads, or None when its proposal part makes its own."""
    if config.model.proposals != "precomputed":
        return None
    from proposals.cache import normalize_params

    pre = config.model.precomputed
    try:
        params = normalize_params(pre.method, pre.params)
    except ValueError as exc:
        raise InputError(None, f"model.precomputed.params: {exc}") from None
    return ProposalSpec(pre.method, params, pre.cache_dir, pre.compute)


def cached_proposals(cache_dir, method: str, params: dict | None, items: list[tuple[str, str]], *,
                     compute: bool = True, workers: int = 2, progress: bool = False, dist=None):
    """``proposals.cache.get_proposals`` for ``items``; under torchrun the computing is sharded.

    With ``dist`` enabled, rank r of K computes the missing entries of items r, r+K, ...
    (entries are keyed files written atomically, so ranks never collide), then every rank
    reads the whole, complete cache. Returns the ``ProposalSet`` of all items on every rank, its
    ``computed`` counting the entries this rank computed.
    """
    from proposals.cache import get_proposals

    if dist is None or not dist.enabled:
        return get_proposals(cache_dir, method, params, items, compute=compute, workers=workers, progress=progress)
    from detect.engine import distributed

    # params.json first, once (rank 0), so no two ranks race to create it.
    distributed.main_first(dist, lambda: get_proposals(cache_dir, method, params, [], compute=compute))
    error, mine = None, None
    try:
        mine = get_proposals(cache_dir, method, params, items[dist.rank :: dist.world_size], compute=compute,
                             workers=workers, progress=progress and dist.is_main)
    except InputError as exc:
        error = (exc.path, exc.detail)
    failures = [e for e in distributed.gather_objects(dist, error) if e is not None]
    if failures:  # every rank raises the same error, none hangs in the barrier
        raise InputError(*failures[0])
    whole = get_proposals(cache_dir, method, params, items, compute=False, workers=1)
    whole.computed, whole.reused = mine.computed, len(items) - mine.computed  # this rank's share of the work
    whole.problems = mine.problems
    return whole


def split_proposals(config, voc, *, dist=None, progress: bool = False):
    """The precomputed proposals of every image of ``voc`` (a ``ProposalSet``), or None if ``config`` makes its own."""
    spec = precomputed_spec(config)
    if spec is None:
        return None
    items = [(ann.image_id, str(voc.image_path(i))) for i, ann in enumerate(voc.annotations)]
    return cached_proposals(spec.cache_for(voc.root), spec.method, spec.params, items, compute=spec.compute,
                            progress=progress, dist=dist)


def image_proposals(config, images) -> tuple[list | None, list | None]:
    """(boxes (P, 4) float32 per image, seconds per image) of HxWx3 uint8 RGB ``images``; (None, None)
    when ``config``'s proposal part makes its own. Computed here, not cached (the images have no file)."""
    spec = precomputed_spec(config)
    if spec is None:
        return None, None
    from proposals.cache import compute_proposals

    boxes, seconds = [], []
    for image in images:
        b, s = compute_proposals(image, spec.method, spec.params)
        boxes.append(b)
        seconds.append(s)
    return boxes, seconds


def spec_key(config) -> str | None:
    """``precomputed_spec(config).key``, or None: configs with equal keys share an image's proposals."""
    spec = precomputed_spec(config)
    return spec.key if spec is not None else None
