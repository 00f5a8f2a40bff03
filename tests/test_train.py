"""Checkpoints, resume after a kill, and a short end-to-end train + evaluate."""
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from comemory.checkpoint import load_checkpoint, model_from_checkpoint
from comemory.config import FlowConfig
from comemory.errors import CheckpointError, ConfigError, DataError, TrainingError
from comemory.evaluate.evaluation import evaluate, evaluate_floor
from comemory.train import loop as training
from comemory.train.loop import train
from tests.conftest import small_config


def test_checkpoint_round_trip(trained_run):
    checkpoint, _, _ = trained_run
    state = load_checkpoint(checkpoint)  # weights_only=True inside
    assert state["epoch"] == 20 and state["flow"] == {"method": "dis", "preset": "medium"}
    calibration = state["calibration"]
    assert calibration["flow_weight"] > 0 and calibration["frame_weight"] > 0
    model, config, _ = model_from_checkpoint(state)
    assert config == small_config()
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(tensor, state["model"][name])
    assert not model.training


def test_corrupt_or_foreign_checkpoints_are_refused(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match="junk.pt: not a readable checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="other.pt: not a comemory checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="missing.pt: checkpoint not found"):
        load_checkpoint(tmp_path / "missing.pt")


class Killed(Exception):
    pass


def test_killed_run_resumes_to_the_same_weights(scene, tmp_path, monkeypatch):
    config = small_config("train.epochs=2")
    cache = tmp_path / "cache"
    uninterrupted = load_checkpoint(train(config, scene, tmp_path / "full", cache))

    real_losses, calls = training.training_losses, []

    def dies_in_epoch_two(*args, **kwargs):
        calls.append(1)
        if len(calls) == 30:  # an epoch of this scene has 21 steps: dies inside epoch 2
            raise Killed
        return real_losses(*args, **kwargs)

    monkeypatch.setattr(training, "training_losses", dies_in_epoch_two)
    with pytest.raises(Killed):
        train(config, scene, tmp_path / "killed", cache)
    assert load_checkpoint(tmp_path / "killed" / "checkpoint.pt")["epoch"] == 1
    with pytest.raises(CheckpointError, match="pass --resume"):
        train(config, scene, tmp_path / "killed", cache)
    monkeypatch.setattr(training, "training_losses", real_losses)
    resumed = load_checkpoint(train(config, scene, tmp_path / "killed", cache, resume=True))

    _assert_same_run(resumed, uninterrupted)
    with open(tmp_path / "killed" / "losses.csv") as handle:
        steps = [int(row["step"]) for row in csv.DictReader(handle)]
    assert steps == list(range(1, uninterrupted["step"] + 1))  # no step logged twice


def _assert_same_run(resumed: dict, uninterrupted: dict) -> None:
    for name, tensor in uninterrupted["model"].items():  # memories included
        torch.testing.assert_close(resumed["model"][name], tensor, rtol=1e-5, atol=1e-6)
    assert resumed["step"] == uninterrupted["step"]


def test_a_run_killed_mid_epoch_resumes_from_its_step_checkpoint(scene, tmp_path, monkeypatch):
    config = small_config("train.epochs=2", "train.checkpoint_every=5")
    cache = tmp_path / "cache"
    uninterrupted = load_checkpoint(train(config, scene, tmp_path / "full", cache))
    real_losses, calls = training.training_losses, []

    def dies_at_step_30(*args, **kwargs):
        calls.append(1)
        if len(calls) == 30:  # 21 steps an epoch: inside epoch 2, after the step-25 checkpoint
            raise Killed
        return real_losses(*args, **kwargs)

    monkeypatch.setattr(training, "training_losses", dies_at_step_30)
    with pytest.raises(Killed):
        train(config, scene, tmp_path / "killed", cache)
    state = load_checkpoint(tmp_path / "killed" / "checkpoint.pt")
    assert (state["epoch"], state["step"]) == (1, 25)
    monkeypatch.setattr(training, "training_losses", real_losses)
    resumed = load_checkpoint(train(config, scene, tmp_path / "killed", cache, resume=True))
    _assert_same_run(resumed, uninterrupted)
    with pytest.raises(CheckpointError, match="train.batch_size=8"):
        train(small_config("train.epochs=2", "train.batch_size=4"), scene,
              tmp_path / "killed", cache, resume=True)


def test_sigkill_at_any_moment_loses_no_completed_checkpoint(scene, tmp_path):
    """A real `comemory train` process is killed with SIGKILL while it trains and writes
    checkpoints every 3 steps; --resume then ends where an uninterrupted run ends."""
    overrides = ["train.epochs=2", "train.checkpoint_every=3"]
    cache, run = tmp_path / "cache", tmp_path / "killed"
    uninterrupted = load_checkpoint(train(small_config(*overrides), scene, tmp_path / "full",
                                          cache))
    command = [sys.executable, "-m", "comemory.cli", "train", "--root", str(scene), "--out",
               str(run), "--preset", "tiny", "--cache-dir", str(cache)]
    command += [arg for o in overrides for arg in ("--set", o)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={**os.environ, "OMP_NUM_THREADS": "2"})
    losses = run / "losses.csv"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if losses.exists() and len(losses.read_text().splitlines()) > 31:  # epoch 2: 22-42
            break
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_at = len(losses.read_text().splitlines()) - 1
    assert 0 < killed_at < uninterrupted["step"], "the process was not killed mid-run"
    state = load_checkpoint(run / "checkpoint.pt")  # complete, whatever the kill interrupted
    assert state["step"] <= killed_at and state["calibration"] is None
    resumed = load_checkpoint(train(small_config(*overrides), scene, run, cache, resume=True))
    _assert_same_run(resumed, uninterrupted)


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(scene, tmp_path, monkeypatch):
    real_losses, calls = training.training_losses, []

    def nan_in_epoch_two(*args, **kwargs):
        losses = real_losses(*args, **kwargs)
        calls.append(1)
        if len(calls) == 25:
            losses["total"] = losses["total"] * float("nan")
        return losses

    monkeypatch.setattr(training, "training_losses", nan_in_epoch_two)
    # 21 steps an epoch: the checkpoint of epoch 1 is the last good one
    with pytest.raises(TrainingError, match=r"nan at step 25.*last good checkpoint \(step 21\)"):
        train(small_config("train.epochs=2"), scene, tmp_path / "run", tmp_path / "cache")
    state = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert state["epoch"] == 1 and all(torch.isfinite(t).all() for t in state["model"].values()
                                       if t.is_floating_point())


def test_resume_refuses_another_model(scene, tmp_path):
    train(small_config("train.epochs=1"), scene, tmp_path / "run", tmp_path / "cache")
    with pytest.raises(CheckpointError, match="another model or flow config"):
        train(small_config("train.epochs=2", "model.width=0.25"), scene, tmp_path / "run",
              tmp_path / "cache", resume=True)


def test_a_finished_run_continues_to_more_epochs_but_not_fewer(scene, tmp_path):
    """With a constant learning rate, 1 epoch then on to 2 is one run of 2 (the budget
    curve of benchmarks/ped2_budget.py is trained this way); fewer epochs is refused."""
    run, cache = tmp_path / "run", tmp_path / "cache"
    train(small_config("train.epochs=1"), scene, run, cache)
    train(small_config("train.epochs=2"), scene, run, cache, resume=True)
    continued = load_checkpoint(run / "checkpoint.pt")
    straight = load_checkpoint(train(small_config("train.epochs=2"), scene, tmp_path / "two",
                                     cache))
    assert continued["epoch"] == 2
    for name, value in straight["model"].items():
        torch.testing.assert_close(continued["model"][name], value, rtol=0, atol=0, msg=name)
    with pytest.raises(CheckpointError, match="has trained 2 epochs already"):
        train(small_config("train.epochs=1"), scene, run, cache, resume=True)


def test_end_to_end_beats_chance_and_writes_every_output(trained_run, tmp_path):
    checkpoint, data, cache = trained_run
    metrics = evaluate(checkpoint, data, tmp_path, cache)
    for name in ("metrics.json", "scores.csv", "roc.png", "score_curves.png", "heatmaps.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert json.loads((tmp_path / "metrics.json").read_text()) == metrics
    by_mode = metrics["scores"]["comemory"]
    assert set(by_mode) == {"video_max", "video_minmax", "none"}
    assert by_mode["none"]["micro_auc"] > 0.75  # chance is 0.5
    assert by_mode["video_max"]["micro_auc"] > 0.75
    assert metrics["frames_without_score"] == 3 * 2  # the first two frames of each video
    assert metrics["pixel_auroc"] > 0.6  # the synthetic scene has pixel masks; chance is 0.5


def test_scores_are_aligned_to_labels_by_frame_index(trained_run, tmp_path):
    checkpoint, data, cache = trained_run
    evaluate(checkpoint, data, tmp_path, cache)
    labels = np.load(data / "frame_labels_synth.npy").reshape(3, 48)
    with open(tmp_path / "scores.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3 * 46
    for row in rows:
        assert int(row["label"]) == labels[int(row["video"]) - 1, int(row["frame"])]
    assert {int(r["frame"]) for r in rows} == set(range(2, 48))


def test_one_class_test_labels_are_a_clear_error(trained_run, tmp_path):
    checkpoint, data, cache = trained_run
    np.save(tmp_path / "all_normal.npy", np.zeros(3 * 48, np.int64))
    with pytest.raises(DataError, match="every scored test frame is labelled 0"):
        evaluate(checkpoint, data, tmp_path / "eval", cache,
                 labels_path=tmp_path / "all_normal.npy")


def test_scoring_with_another_flow_extractor_is_refused(trained_run, tmp_path):
    checkpoint, data, cache = trained_run
    with pytest.raises(CheckpointError, match="refusing to score with"):
        evaluate(checkpoint, data, tmp_path, cache, flow=FlowConfig(method="farneback"))
    with pytest.raises(CheckpointError, match="refusing"):
        evaluate(checkpoint, data, tmp_path, cache, flow=FlowConfig(preset="ultrafast"))


def test_a_finished_run_resumes_as_a_no_op(trained_run):
    checkpoint, data, cache = trained_run
    before = checkpoint.stat().st_mtime_ns
    assert train(small_config(), data, checkpoint.parent, cache, resume=True) == checkpoint
    assert checkpoint.stat().st_mtime_ns == before
    assert load_checkpoint(checkpoint)["train_seconds"] > 0


def test_bf16_channels_last_training_runs_and_bad_precision_is_named(scene, tmp_path):
    config = small_config("train.epochs=1", "train.precision=bf16", "train.channels_last=true")
    state = load_checkpoint(train(config, scene, tmp_path / "run", tmp_path / "cache"))
    assert all(torch.isfinite(t).all() for t in state["model"].values() if t.is_floating_point())
    assert state["model"]["motion_head.memory.items"].dtype == torch.float32
    with pytest.raises(ConfigError, match="train.precision must be auto, fp32 or bf16"):
        train(small_config("train.precision=fp16"), scene, tmp_path / "bad", tmp_path / "cache")


def test_mnad_baseline_trains_and_scores_with_its_own_protocol(scene, tmp_path):
    config = small_config("model.architecture=mnad", "train.epochs=4")
    checkpoint = train(config, scene, tmp_path / "run", tmp_path / "cache")
    calibration = load_checkpoint(checkpoint)["calibration"]
    assert calibration["psnr_std"] > 0 and calibration["distance_std"] > 0
    metrics = evaluate(checkpoint, scene, tmp_path / "eval", tmp_path / "cache")
    assert set(metrics["scores"]) == {"mnad", "psnr"} and metrics["architecture"] == "mnad"
    assert metrics["frames_without_score"] == 3 * 4  # MNAD needs four past frames
    assert metrics["scores"]["mnad"]["video_minmax"]["micro_auc"] > 0.6  # chance is 0.5
    with open(tmp_path / "eval" / "scores.csv") as handle:
        first = next(csv.DictReader(handle))
    assert int(first["frame"]) == 4 and "mnad_score" in first


def test_flow_floor_needs_no_training(scene, tmp_path):
    metrics = evaluate_floor(small_config(), scene, tmp_path, tmp_path / "cache")
    assert set(metrics["scores"]) == {"flow_floor"} and metrics["checkpoint"] is None
    # Of the synthetic anomalies only the fast object moves faster than the walkers (test
    # video 01); a large or a wrong-way walker has walking speed and the floor cannot see it.
    with open(tmp_path / "scores.csv") as handle:
        rows = [r for r in csv.DictReader(handle) if r["video"] == "01"]
    fast_video_auc = roc_auc_score([int(r["label"]) for r in rows],
                                   [float(r["flow_floor_score"]) for r in rows])
    assert fast_video_auc > 0.8  # chance is 0.5
    assert metrics["pixel_auroc"] > 0.6 and metrics["pixel_auroc_videos"] == 3
    assert (tmp_path / "heatmaps.png").stat().st_size > 0


def test_pixel_auroc_counts_only_the_videos_that_have_masks(scene, tmp_path):
    """The scene in the own-videos layout, with masks for one test video of three."""
    root = tmp_path / "videos"
    for split in ("training", "testing"):
        for folder in sorted((scene / split / "frames").iterdir()):
            (root / split).mkdir(parents=True, exist_ok=True)
            write_avi_lossless(sorted(folder.glob("*.png")), root / split / f"{folder.name}.avi")
    labels = np.load(scene / "frame_labels_synth.npy").reshape(3, -1)
    spans = [f"{video:02d},{frame},{frame}" for video, row in enumerate(labels, start=1)
             for frame in np.flatnonzero(row)]
    (root / "labels.csv").write_text("video,start_frame,end_frame\n" + "\n".join(spans) + "\n")
    shutil.copytree(scene / "testing" / "masks" / "01", root / "testing_masks" / "01")
    metrics = evaluate_floor(small_config(), root, tmp_path / "eval", tmp_path / "cache",
                             dataset="videos")
    assert metrics["pixel_auroc_videos"] == 1 and metrics["pixel_auroc"] > 0.6
    assert metrics["scores"]["flow_floor"]["none"]["macro_videos"] == 3


def write_avi_lossless(frames: list, path) -> None:
    first = cv2.imread(str(frames[0]))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), 10,
                             (first.shape[1], first.shape[0]))
    assert writer.isOpened()
    for frame in frames:
        writer.write(cv2.imread(str(frame)))
    writer.release()
