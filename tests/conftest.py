"""Shared fixtures: a small synthetic dataset and one short training run on it."""
# ruff: noqa: I001  (comemory must be imported before torch)
from __future__ import annotations

from pathlib import Path

import pytest

import comemory  # noqa: F401  first: it sets OpenMP's passive waiting before torch loads
import torch

from comemory.config import Config, apply_overrides, preset
from comemory.data.synth import SynthSpec, synthesize
from comemory.train.loop import train

torch.set_num_threads(2)

# Four training videos: the tiny preset was chosen on the demo's four (tune_tiny.py);
# with three, too few normal samples for it (micro AUC 0.75 on this seed, 0.92 with four).
SMALL_SCENE = SynthSpec(seed=3, train_videos=4, test_videos=3, frames=48)


def small_config(*overrides: str) -> Config:
    """The tiny preset as shipped, with ``overrides`` (section.key=value) applied."""
    return apply_overrides(preset("tiny"), list(overrides))


@pytest.fixture(scope="session")
def scene(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("scene")
    synthesize(root, SMALL_SCENE)
    return root


@pytest.fixture(scope="session")
def trained_run(scene, tmp_path_factory) -> tuple[Path, Path, Path]:
    """(checkpoint, data root, cache dir) of a finished tiny run on ``scene``."""
    run = tmp_path_factory.mktemp("run")
    cache = tmp_path_factory.mktemp("cache")
    checkpoint = train(small_config(), scene, run / "train", cache)
    return checkpoint, scene, cache


@pytest.fixture(scope="session")
def postgres_server():
    """A PostgreSQL server for this test session (skips where PostgreSQL is absent, fails
    there in CI: tests/postgres_server.py)."""
    from tests.postgres_server import Server, programs_or_skip

    server = Server(programs_or_skip())
    server.start()
    yield server
    server.stop()
