"""Behaviour kept through a redesign: a checkpoint written by the code of commit ec20a26
(tests/fixtures/behaviour/, made by tests/fixtures/make_behaviour_fixture.py) is scored
by today's code to the same figures.

``evaluate`` must give the same metrics.json to 1e-6, and ``detect`` on one synthetic test
video the same scores.csv and events.json (frames, flags and events exactly; numbers as
written with 6 significant digits, to one unit in the last: another CPU's vector units may
round a convolution's last bit differently, and that may flip a printed digit). A change
that is meant to move the figures rewrites the reference with that script and says so in
its commit.
"""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from comemory.data.synth import SynthSpec, synthesize
from comemory.detect import detect
from comemory.evaluate.evaluation import evaluate

FIXTURE = Path(__file__).parent / "fixtures" / "behaviour"
SCENE = SynthSpec(seed=5, train_videos=4, test_videos=3, frames=40)
TRAINING = ["train.epochs=2", "model.width=0.0625"]  # a checkpoint of 0.6 MB
DETECTED_VIDEO = "02"
RUN_DEPENDENT = {"checkpoint", "data", "folder", "seconds", "calibrated_at"}  # paths, clocks


@pytest.fixture(scope="module")
def behaviour_scene(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("behaviour")
    synthesize(root, SCENE)
    return root


def test_evaluate_gives_the_stored_metrics(behaviour_scene, tmp_path):
    evaluate(FIXTURE / "checkpoint.pt", behaviour_scene, tmp_path / "eval", tmp_path / "cache")
    stored = json.loads((FIXTURE / "metrics.json").read_text())
    today = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert _differences(stored, today, "metrics") == []


def test_detect_gives_the_stored_scores_and_events(behaviour_scene, tmp_path):
    source = behaviour_scene / "testing" / "frames" / DETECTED_VIDEO
    detect(source, FIXTURE / "checkpoint.pt", tmp_path, progress=False)
    folder = tmp_path / DETECTED_VIDEO
    stored_rows = _csv_rows(FIXTURE / "scores.csv")
    today_rows = _csv_rows(folder / "scores.csv")
    assert stored_rows[0] == today_rows[0]  # the same columns
    assert _differences(stored_rows, today_rows, "scores.csv", tolerance=1e-5) == []
    stored = json.loads((FIXTURE / "events.json").read_text())
    today = json.loads((folder / "events.json").read_text())
    assert _differences(stored, today, "events.json") == []


def _csv_rows(path: Path) -> list[list]:
    with path.open(newline="") as handle:
        return [[_number_or_text(cell) for cell in row] for row in csv.reader(handle)]


def _number_or_text(cell: str):
    try:
        return float(cell)
    except ValueError:
        return cell


def _differences(stored, today, where: str, tolerance: float = 1e-6) -> list[str]:
    """Where ``today`` differs from ``stored``: numbers beyond ``tolerance`` (relative
    above 1), anything else at all; keys that name run paths and clocks are not compared."""
    if isinstance(stored, dict) and isinstance(today, dict):
        if set(stored) != set(today):
            return [f"{where}: keys {sorted(set(stored) ^ set(today))} differ"]
        return [d for key in stored if key not in RUN_DEPENDENT
                for d in _differences(stored[key], today[key], f"{where}.{key}", tolerance)]
    if isinstance(stored, list) and isinstance(today, list):
        if len(stored) != len(today):
            return [f"{where}: {len(stored)} items stored, {len(today)} today"]
        return [d for i, (a, b) in enumerate(zip(stored, today, strict=True))
                for d in _differences(a, b, f"{where}[{i}]", tolerance)]
    numbers = (int, float)
    if (isinstance(stored, numbers) and isinstance(today, numbers)
            and not isinstance(stored, bool) and not isinstance(today, bool)):
        same = (math.isclose(stored, today, rel_tol=tolerance, abs_tol=tolerance)
                or (math.isnan(stored) and math.isnan(today)))
        return [] if same else [f"{where}: {stored} stored, {today} today"]
    return [] if stored == today else [f"{where}: {stored!r} stored, {today!r} today"]
