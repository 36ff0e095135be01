"""Fixtures shared by the whole suite: a small synthetic VOC dataset and a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def pytest_configure(config):
    """Under pytest-xdist each worker gets one torch thread: two workers x two threads on two
    cores fight each other and run several times slower than two single-threaded workers."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        try:
            import torch
        except ImportError:  # pragma: no cover - torch is a runtime dependency
            return
        torch.set_num_threads(1)


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory) -> Path:
    """A tiny synthetic VOC dataset: 16 train and 8 test images at 128 px (seed 0)."""
    from detect.data.synth import make_synthetic_voc

    return make_synthetic_voc(tmp_path_factory.mktemp("synth"), train=16, test=8, seed=0, image_size=128)


def run_cli(*args: str, cwd: str | os.PathLike | None = None, timeout: float = 600, env: dict | None = None):
    """Run ``detladder ARGS`` in a fresh interpreter; returns the CompletedProcess (text mode)."""
    full_env = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "detect.cli", *map(str, args)],
        capture_output=True, text=True, cwd=cwd or REPO, timeout=timeout, env=full_env,
    )


@pytest.fixture
def cli():
    """The ``run_cli`` helper as a fixture."""
    return run_cli
