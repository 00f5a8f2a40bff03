"""Per-camera adaptation (comemory.alerts.adapt): a camera's own threshold, learned and
kept current, that still alarms on what it did not learn."""
from __future__ import annotations

import json

import numpy as np
import pytest

from comemory.alerts import AlertPolicy
from comemory.alerts.adapt import Adaptation, tail_threshold
from comemory.detect import detect
from comemory.errors import ConfigError
from comemory.serve import Service
from comemory.serve.config import serve_config_from_dict
from tests.test_serve import two_cameras, wait_for

FPS = 25.0


def test_the_tail_model_finds_the_rate_beyond_its_samples():
    rng = np.random.default_rng(0)
    scores = rng.exponential(1.0, 5000)
    # the 0.1 % point lies in the last five samples: the fitted tail is steadier
    assert tail_threshold(scores, 0.001) == pytest.approx(np.log(1000), rel=0.1)
    assert type(tail_threshold(scores, 0.001)) is float  # written to JSON as it is
    assert tail_threshold(scores, 0.05) == pytest.approx(np.quantile(scores, 0.95))


def drifting_scores(rng: np.random.Generator, frames: int, rise: float) -> np.ndarray:
    """Normal scores whose level rises slowly by ``rise`` (light changing over a day)."""
    return rng.normal(0.0, 1.0, frames) + np.linspace(0.0, rise, frames)


def run(policy: AlertPolicy, scores: np.ndarray):
    stream = policy.watch("camera", fps=FPS)
    verdicts = [stream.add(frame, float(score)) for frame, score in enumerate(scores)]
    stream.finish()
    return stream, verdicts


def test_adaptation_tracks_a_slow_level_change_and_still_alarms_on_an_anomaly():
    rng = np.random.default_rng(1)
    scores = drifting_scores(rng, 30_000, rise=3.0)
    anomaly = slice(27_000, 27_060)  # 2.4 s of a sudden anomaly, late in the drift
    scores[anomaly] += 6.0
    fixed = AlertPolicy(threshold=2.33, false_alarm_rate=0.01)  # the level it trained on
    adapted = fixed.adapted(Adaptation(learn_seconds=60.0, window_seconds=120.0))
    normal = np.ones(len(scores), bool)
    normal[anomaly] = False
    _, fixed_verdicts = run(fixed, scores)
    stream, verdicts = run(adapted, scores)
    flagged = np.array([v.alarm for v in verdicts])
    fixed_flagged = np.array([v.alarm for v in fixed_verdicts])
    late = np.zeros(len(scores), bool)
    late[20_000:] = True  # where the level has risen by 2 and more
    assert fixed_flagged[late & normal].mean() > 0.3
    assert flagged[late & normal].mean() < 0.03  # about the 1 % asked, a little lag
    assert flagged[anomaly].mean() > 0.9  # the sudden anomaly still alarms
    [event] = [e for e in stream.events if e.start_frame <= 27_000 <= e.end_frame + 5]
    assert event.end_frame >= 27_050
    assert verdicts[-1].threshold > 2.33 + 2.0  # the camera's own threshold rose with it
    assert all(type(v.alarm) is bool for v in verdicts)  # scores.jsonl writes it


def test_frames_of_an_event_are_not_learned():
    rng = np.random.default_rng(2)
    scores = rng.normal(0.0, 1.0, 6000)
    scores[4000:5500] += 8.0  # a long incident: a minute of alarms
    policy = AlertPolicy(threshold=2.33, false_alarm_rate=0.01).adapted(
        Adaptation(learn_seconds=40.0, window_seconds=80.0))
    _, verdicts = run(policy, scores)
    before, during = verdicts[3990].threshold, verdicts[5490].threshold
    assert during == pytest.approx(before, abs=0.3)  # the incident did not teach it
    assert np.mean([v.alarm for v in verdicts[4000:5500]]) > 0.95


def test_adaptation_settings_are_checked():
    with pytest.raises(ConfigError, match="needs footage marked normal"):
        Adaptation(learn_seconds=0.0)
    with pytest.raises(ConfigError, match="learn_seconds >= 0"):
        Adaptation(learn_seconds=-1.0)
    with pytest.raises(ConfigError, match="threshold set by hand"):
        AlertPolicy(threshold=1.0).adapted(Adaptation())


def test_detect_learns_the_camera_from_footage_marked_normal(trained_run, tmp_path):
    checkpoint, scene, _ = trained_run
    source = scene / "testing" / "frames" / "01"
    marked = scene / "training" / "frames" / "02"  # normal footage of the same scene
    [summary] = detect(source, checkpoint, tmp_path / "out", video=False, progress=False,
                       adapt_from=marked)
    events = json.loads((tmp_path / "out" / "01" / "events.json").read_text())
    assert events["adaptation"]["frames_marked_normal"] == 48 - 2
    policy = AlertPolicy(1.0, false_alarm_rate=0.01).adapted(Adaptation(0.0, None, (1.0,)))
    assert "learns its own threshold" in policy.statement()
    rows = [json.loads(line) for line in (tmp_path / "out" / "01" / "scores.jsonl").open()]
    judged = {row["threshold"] for row in rows if row["score"] is not None}
    assert events["threshold"] not in judged  # the camera's own from the first frame
    assert all(row["anomalous"] == (row["score"] > row["threshold"]) for row in rows
               if row["score"] is not None)
    assert summary["scored"] == len([r for r in rows if r["score"] is not None])


def test_a_serve_camera_learns_its_own_threshold(trained_run, tmp_path):
    checkpoint, scene, _ = trained_run
    settings = two_cameras(checkpoint, scene, tmp_path / "serve")
    settings["cameras"][0]["adapt_seconds"] = 1.0  # 25 frames at the default frame rate
    service = Service(serve_config_from_dict(settings), environ={})
    fixed = service.camera("street").policy.threshold
    service.start(web=False)
    try:
        wait_for(lambda: service.camera("walkway").view.scored > 40, 60, "the camera scoring")
    finally:
        service.stop()
    learned = service.camera("walkway").status()["threshold"]
    assert learned != fixed  # its own, learned from its first second
    assert service.camera("walkway").painter.threshold == learned  # the pictures follow
    assert service.camera("street").status()["threshold"] == fixed  # not opted in
    settings["cameras"][0]["threshold"] = 2.5
    with pytest.raises(ConfigError, match="adapt_seconds"):
        serve_config_from_dict(settings)
