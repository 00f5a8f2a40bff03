"""The alert threshold's promise on new videos (comemory.alerts.promise) and cross-fitting
(comemory calibrate)."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from comemory.alerts import AlertPolicy
from comemory.alerts.promise import video_quantile, video_threshold, videos_needed
from comemory.checkpoint import load_checkpoint
from comemory.cli import main
from comemory.detect import detect
from comemory.errors import ConfigError, DataError
from comemory.scoring import Calibration
from comemory.train.crossfit import cross_fit
from comemory.train.validate import validate_checkpoint

RATE = 0.01


def shifted_videos(rng: np.random.Generator, count: int, frames: int = 300) -> list[np.ndarray]:
    """Normal videos whose score level moves from one to the next, as real footage's does
    (the spread between videos larger than within one video's 1 % tail)."""
    return [rng.normal(rng.normal(0.0, 0.6), 1.0, frames) for _ in range(count)]


def kept_share(threshold: float, videos: list[np.ndarray]) -> float:
    """The share of ``videos`` with at most RATE of their frames above ``threshold``."""
    return float(np.mean([np.mean(v > threshold) <= RATE for v in videos]))


def test_the_video_threshold_keeps_its_rate_on_unseen_videos_where_pooled_frames_do_not():
    rng = np.random.default_rng(0)
    unseen = shifted_videos(rng, 400)
    by_videos, by_frames = [], []
    for _ in range(40):  # many calibrations: the promise is about how often it holds
        calibration = shifted_videos(rng, 19)  # 19 videos back 95 % (r = 19 of 20)
        promise = video_threshold(calibration, RATE, confidence=0.95)
        assert promise.kept and promise.confidence == pytest.approx(19 / 20)
        by_videos.append(kept_share(promise.threshold, unseen))
        # the old threshold: the 99th percentile of three held-out videos' frames, pooled
        by_frames.append(kept_share(np.quantile(np.concatenate(calibration[:3]), 1 - RATE),
                                    unseen))
    assert np.mean(by_videos) >= 0.9  # 0.95 promised; 400 unseen videos measure it
    assert np.mean(by_frames) < 0.7


def test_the_promise_falls_with_fewer_videos_and_says_what_it_needs():
    rng = np.random.default_rng(1)
    videos = shifted_videos(rng, 9)
    nine = video_threshold(videos, RATE, confidence=0.9, source="nine")
    three = video_threshold(videos[:3], RATE, confidence=0.9, source="three")
    assert nine.kept and nine.confidence == pytest.approx(0.9)
    assert not three.kept and three.confidence == pytest.approx(0.75)
    assert three.threshold == max(video_quantile(v, RATE) for v in videos[:3])
    assert "cannot promise 1.0% with 90% confidence" in three.statement()
    assert "needs 9 calibration videos" in three.statement()
    assert "cannot" not in nine.statement()
    assert [videos_needed(c) for c in (0.5, 0.75, 0.9, 0.95)] == [1, 3, 9, 19]
    with pytest.raises(ConfigError, match="confidence"):
        video_threshold(videos, RATE, confidence=1.0)


def test_a_video_quantile_lets_at_most_the_rate_alarm():
    scores = np.arange(1000, dtype=float)
    threshold = video_quantile(scores, 0.01)
    assert np.sum(scores > threshold) == 10
    short = np.arange(50, dtype=float)  # 1 % of 50 frames: none may alarm
    assert video_quantile(short, 0.01) == 49.0


def test_cross_fitting_sets_the_threshold_from_every_training_video(trained_run, tmp_path):
    checkpoint, scene, cache = trained_run
    run = tmp_path / "run"
    shutil.copytree(checkpoint.parent, run)
    result = cross_fit(run / "checkpoint.pt", scene, folds=2, cache_dir=cache)
    calibration = Calibration.from_dict(load_checkpoint(run / "checkpoint.pt")["calibration"])
    videos = [np.array(v) for v in calibration.extra["video_scores"]]
    assert len(videos) == 4  # the scene's four training videos, each scored once
    assert all(len(v) == 48 - 2 for v in videos)  # every frame after the two past ones
    expected = video_threshold(videos, RATE, 0.9)
    assert calibration.threshold == pytest.approx(expected.threshold)
    assert result["videos"] == 4 and not result["kept"]  # four videos back 80 %, not 90 %
    assert "cross-fitted" in calibration.extra["threshold_source"]
    policy = AlertPolicy.from_calibration(calibration)
    assert policy.promise.confidence == pytest.approx(0.8)
    assert "cannot promise" in policy.statement()
    folds = sorted(p.name for p in (run / "folds").iterdir())
    assert folds == ["1-of-2", "2-of-2"]
    for fold in folds:  # each fold's model held out its own videos, whole
        state = load_checkpoint(run / "folds" / fold / "checkpoint.pt")
        assert state["config"]["train"]["folds"] == 2
        assert "cross-fitting fold" in state["validation"]["skipped"]  # no validation set
    stamp = (run / "folds" / "1-of-2" / "checkpoint.pt").stat().st_mtime_ns
    cross_fit(run / "checkpoint.pt", scene, folds=2, cache_dir=cache)  # finished: read again
    assert (run / "folds" / "1-of-2" / "checkpoint.pt").stat().st_mtime_ns == stamp
    with pytest.raises(DataError, match="5 folds need at least 5 training videos"):
        cross_fit(run / "checkpoint.pt", scene, folds=5, cache_dir=cache)
    fold_scores_follow_a_new_score_choice(run, scene, cache)


def fold_scores_follow_a_new_score_choice(run, scene, cache) -> None:
    """Calibrating again after ``validate --choose`` changed the score settings scores the
    fold networks again under them, without training them again."""
    fold = run / "folds" / "1-of-2" / "checkpoint.pt"
    before = load_checkpoint(fold)
    validate_checkpoint(run / "checkpoint.pt", scene, cache_dir=cache, choose=True,
                        overrides=["score.perspective=true"])
    cross_fit(run / "checkpoint.pt", scene, folds=2, cache_dir=cache)
    after = load_checkpoint(fold)
    assert after["chosen_score"]["perspective"] and not before["chosen_score"]["perspective"]
    assert after["step"] == before["step"]
    assert all(torch.equal(after["model"][k], before["model"][k]) for k in before["model"])
    old, new = (Calibration.from_dict(s["calibration"]).extra["video_scores"]
                for s in (before, after))
    assert not np.allclose(np.concatenate(old), np.concatenate(new))
    calibration = Calibration.from_dict(load_checkpoint(run / "checkpoint.pt")["calibration"])
    videos = [np.array(v) for v in calibration.extra["video_scores"]]
    assert np.allclose(np.concatenate(videos[:len(new)]), np.concatenate(new))
    assert calibration.threshold == pytest.approx(video_threshold(videos, RATE, 0.9).threshold)


def test_calibrate_on_the_command_line_names_what_is_wrong(trained_run, capsys):
    checkpoint, scene, cache = trained_run
    code = main(["calibrate", "--checkpoint", str(checkpoint), "--root", str(scene),
                 "--cache-dir", str(cache), "--folds", "9"])
    assert code == 2 and "9 folds need at least 9 training videos" in capsys.readouterr().err


def test_a_checkpoint_calibrated_before_promises_says_it_promises_nothing_per_video():
    old = Calibration(threshold=1.0, false_alarm_rate=0.01,
                      extra={"threshold_source": "300 held-out normal frames",
                             "normal_scores": [0.0, 1.0, 2.0]})
    policy = AlertPolicy.from_calibration(old)
    assert policy.promise is None and policy.threshold == 1.0
    assert "before video-level promises" in policy.statement()
    assert AlertPolicy.from_calibration(old, false_alarm_rate=0.5).threshold == 1.0


def test_detect_warns_when_the_checkpoint_cannot_back_its_rate(trained_run, tmp_path, caplog):
    checkpoint, scene, _ = trained_run  # four tails held out: 80 %, not the 90 % asked
    detect(scene / "testing" / "frames" / "01", checkpoint, tmp_path / "out", video=False,
           progress=False)
    [warning] = [r for r in caplog.records if "cannot promise" in r.getMessage()]
    assert warning.levelname == "WARNING" and "with 80% confidence" in warning.getMessage()
    events = json.loads((tmp_path / "out" / "01" / "events.json").read_text())
    assert events["promise"]["videos"] == 4 and not events["promise"]["kept"]
