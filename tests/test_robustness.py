"""Bad settings and inputs fail early with one line; runs that are stopped or raced leave
honest files; progress is readable in a log; the command line explains every option."""
from __future__ import annotations

import argparse
import csv
import inspect
import io
import json
import logging
import multiprocessing
import os
import shutil
import signal

import cv2
import numpy as np
import pytest
import torch

from comemory import cli, storage
from comemory.cli import main
from comemory.cpu import native_bf16, resolve_precision
from comemory.data.cache import read_split
from comemory.data.datasets import read_dataset
from comemory.data.frames import VideoFile, list_frames
from comemory.data.labels import read_labels_csv
from comemory.detect import Detector, detect
from comemory.errors import FolderInUse
from comemory.progress import LineProgress, progress


@pytest.mark.parametrize("setting, message", [
    ("train.epochs=0", "train.epochs must be at least 1, got 0"),
    ("train.epochs=-1", "train.epochs must be at least 1, got -1"),
    ("train.device=gpu", "train.device must be auto, cpu, cuda or cuda:N, got 'gpu'"),
    ("train.batch_size=0", "train.batch_size must be at least 1, got 0"),
    ("train.lr=-1", "train.lr must be a number > 0, got -1.0"),
    ("model.image_size=65", "model.image_size must be a multiple of 8"),
    ("alert.false_alarm_rate=0", "alert.false_alarm_rate must be between 0 and 1"),
    ("score.false_alarm_rate=1", "alert.false_alarm_rate must be between 0 and 1"),  # old name
    ("train.holdout=frames", "train.holdout must be tail or videos, got 'frames'"),
    ("choose.rule=max", "choose.rule must be one_se or best, got 'max'"),
    ("score.test_time_update=-1", "score.test_time_update must be >= 0"),
])
def test_bad_settings_fail_before_any_work(scene, tmp_path, capsys, setting, message):
    run, cache = tmp_path / "run", tmp_path / "cache"
    code = main(["train", "--root", str(scene), "--out", str(run), "--preset", "tiny",
                 "--cache-dir", str(cache), "--set", setting])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not run.exists() and not cache.exists()  # nothing prepared, nothing written


def test_a_gpu_that_is_not_there_is_an_error_not_a_cpu_run(scene, tmp_path, capsys):
    code = main(["train", "--root", str(scene), "--out", str(tmp_path / "run"), "--preset",
                 "tiny", "--cache-dir", str(tmp_path / "cache"), "--set", "train.device=cuda:0",
                 "--set", "train.epochs=1"])
    if torch.cuda.is_available():
        assert code == 0
    else:
        assert code == 2 and "PyTorch sees no CUDA GPU" in capsys.readouterr().err
        assert not (tmp_path / "run").exists()


def test_evaluate_and_validate_name_a_device_they_cannot_use(trained_run, tmp_path, capsys):
    checkpoint, data, _ = trained_run
    devices = ["gpu"] + ([] if torch.cuda.is_available() else ["cuda"])
    for command in ("evaluate", "validate"):
        for device in devices:
            code = main([command, "--checkpoint", str(checkpoint), "--root", str(data),
                         "--out", str(tmp_path / command), "--device", device])
            err = capsys.readouterr().err
            assert code == 2 and f"device {device}" in err.replace("'", "")
    assert not (tmp_path / "evaluate").exists() and not (tmp_path / "validate").exists()


def test_detect_refuses_a_threshold_that_is_not_a_number(trained_run, tmp_path, capsys):
    checkpoint, data, _ = trained_run
    for value in ("nan", "inf"):
        assert main(["detect", str(data / "testing" / "frames" / "01"), "--checkpoint",
                     str(checkpoint), "--out", str(tmp_path / "out"), "--threshold", value]) == 2
        assert "threshold must be a finite number" in capsys.readouterr().err
    assert main(["detect", str(data / "testing" / "frames" / "01"), "--checkpoint",
                 str(checkpoint), "--out", str(tmp_path / "out"), "--event-gap", "-1"]) == 2
    assert "max_gap >= 0" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_wrong_test_labels_stop_prepare_before_the_training_split_is_prepared(
        scene, tmp_path, capsys):
    labels = tmp_path / "short.npy"
    np.save(labels, np.zeros(100, np.int64))  # the scene's 3 test videos hold 144 frames
    cache = tmp_path / "cache"
    assert main(["prepare", "--root", str(scene), "--preset", "tiny", "--cache-dir", str(cache),
                 "--labels", str(labels)]) == 2
    assert "short.npy: 100 labels but the 3 test videos hold 144 frames" in \
        capsys.readouterr().err
    assert not cache.exists()


def test_masks_that_do_not_fit_are_found_before_preparation(scene, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(scene, data)
    list_frames(data / "testing" / "masks" / "02")[-1].unlink()
    cache = tmp_path / "cache"
    assert main(["prepare", "--root", str(data), "--preset", "tiny",
                 "--cache-dir", str(cache)]) == 2
    assert "47 masks for video '02', which has 48 frames" in capsys.readouterr().err
    assert not cache.exists()


def test_labels_csv_saved_by_a_spreadsheet_is_read(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_bytes("\ufeffvideo, start_frame, end_frame\r\nclip1, 10, 20\r\nclip2,3,4\r\n"
                     .encode("utf-8"))
    assert read_labels_csv(path) == {"clip1": [(10, 20)], "clip2": [(3, 4)]}
    path.write_text("name,first,last\nclip1,1,2\n")
    with pytest.raises(Exception, match="header video,start_frame,end_frame"):
        read_labels_csv(path)


def _write_avi(path, frames: int) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 48))
    for index in range(frames):
        writer.write(np.full((48, 64, 3), (index * 4) % 256, np.uint8))
    writer.release()


def test_a_cut_video_file_says_how_many_frames_it_promised_and_gave(tmp_path, caplog):
    whole, cut = tmp_path / "whole.avi", tmp_path / "cut.avi"
    _write_avi(whole, 60)
    data = whole.read_bytes()
    cut.write_bytes(data[:len(data) // 2])
    source = VideoFile(cut)
    assert source.frame_count() == 60  # what the header promises
    with caplog.at_level(logging.WARNING):
        frames = source.read(32, 1)
    assert 3 <= len(frames) < 60
    assert f"promises 60 frames but only {len(frames)} decode" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert len(VideoFile(whole).read(32, 1)) == 60
    assert "promises" not in caplog.text


def test_a_damaged_checkpoint_is_one_line_without_torch_advice(trained_run, tmp_path, capsys):
    checkpoint, data, _ = trained_run
    damaged = tmp_path / "cut.pt"
    damaged.write_bytes(checkpoint.read_bytes()[:5000])
    random_bytes = tmp_path / "random.pt"
    random_bytes.write_bytes(np.random.default_rng(0).bytes(4096))
    for path in (damaged, random_bytes):
        assert main(["evaluate", "--checkpoint", str(path), "--root", str(data),
                     "--out", str(tmp_path / "eval")]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1, err
        assert f"{path}: not a readable checkpoint: the file is damaged" in err
        assert "weights_only" not in err


def test_ctrl_c_in_detect_leaves_honest_incomplete_results(trained_run, tmp_path, capsys,
                                                           monkeypatch):
    checkpoint, data, _ = trained_run
    real_score, calls = Detector.score_frame, []

    def stopped_at_frame_20(self, frame, index=0, *args, **kwargs):
        if index == 20:
            raise KeyboardInterrupt
        calls.append(index)
        return real_score(self, frame, index, *args, **kwargs)

    monkeypatch.setattr(Detector, "score_frame", stopped_at_frame_20)
    out = tmp_path / "out"
    # every scored frame is above this threshold: an event is open when Ctrl-C comes
    assert main(["detect", str(data / "testing" / "frames" / "01"), "--checkpoint",
                 str(checkpoint), "--out", str(out), "--threshold=-1e9", "--no-video"]) == 130
    err = capsys.readouterr().err
    assert "detect interrupted after frame 19 of 01" in err and "incomplete" in err
    assert "--resume" not in err  # that advice is for train
    events = json.loads((out / "01" / "events.json").read_text())
    assert events["complete"] is False and events["last_frame"] == 19
    assert events["stopped_because"] == "interrupted (Ctrl-C)"
    assert [(e["start_frame"], e["end_frame"], e["cut"]) for e in events["events"]] == \
        [(2, 19, True)]
    with open(out / "01" / "scores.csv") as handle:
        assert [int(r["frame"]) for r in csv.DictReader(handle)] == list(range(20))


def test_a_finished_detect_says_it_is_complete(trained_run, tmp_path):
    checkpoint, data, _ = trained_run
    detect(data / "testing" / "frames" / "01", checkpoint, tmp_path, threshold=-1e9,
           video=False, progress=False)
    events = json.loads((tmp_path / "01" / "events.json").read_text())
    assert events["complete"] is True and "stopped_because" not in events
    assert [(e["start_frame"], e["end_frame"], e["cut"]) for e in events["events"]] == \
        [(2, 47, False)]


def _hold_lock(folder, ready):
    with storage.folder_lock(folder, "train"):
        ready.set()
        signal.pause()


def test_a_run_folder_is_held_by_one_process_and_freed_by_kill_9(scene, tmp_path, capsys):
    run = tmp_path / "run"
    ready = multiprocessing.get_context("fork").Event()
    holder = multiprocessing.get_context("fork").Process(target=_hold_lock, args=(run, ready))
    holder.start()
    assert ready.wait(30)
    code = main(["train", "--root", str(scene), "--out", str(run), "--preset", "tiny",
                 "--cache-dir", str(tmp_path / "cache"), "--set", "train.epochs=1"])
    err = capsys.readouterr().err
    assert code == 2 and f"(pid {holder.pid}) is writing here" in err
    assert not (run / "checkpoint.pt").exists() and not (run / "losses.csv").exists()
    os.kill(holder.pid, signal.SIGKILL)
    holder.join()
    with storage.folder_lock(run, "train"):  # the dead holder left no stale lock
        with pytest.raises(FolderInUse):
            with storage.folder_lock(run, "detect"):  # and a second taker is refused
                pass
        assert (run / storage.LOCK_NAME).exists()
    assert not (run / storage.LOCK_NAME).exists()  # a clean end leaves no lock file
    with storage.folder_lock(run, "train"):  # and the folder can be taken again
        pass


def test_bench_does_not_overwrite_the_tracked_results_by_default():
    args = cli.build_parser().parse_args(["bench"])
    assert args.out.parts[0] == "runs"


def test_progress_off_a_terminal_is_a_few_whole_lines():
    stream = io.StringIO()
    bar = progress(range(5000), desc="epoch 1/3", unit="batch", stream=stream)
    assert isinstance(bar, LineProgress)
    assert sum(1 for _ in bar) == 5000
    text = stream.getvalue()
    assert "\r" not in text and text.count("\n") == 1
    assert text.startswith("epoch 1/3: 5000/5000 batch") and "(done)" in text
    timed = LineProgress(None, "scoring", 10, "frame", 0, False, stream, interval=0.0)
    for _ in range(3):
        timed.update()
    timed.close()
    assert stream.getvalue().count("scoring: ") == 4  # three updates and the end


def test_training_logs_a_line_per_epoch_off_a_terminal(scene, tmp_path, capsys):
    assert main(["train", "--root", str(scene), "--out", str(tmp_path / "run"), "--preset",
                 "tiny", "--cache-dir", str(tmp_path / "cache"), "--set", "train.epochs=3"]) == 0
    err = capsys.readouterr().err
    assert "\r" not in err
    epoch_lines = [line for line in err.splitlines() if line.startswith("epoch ")]
    assert [line.split(":")[0] for line in epoch_lines] == ["epoch 1/3", "epoch 2/3",
                                                             "epoch 3/3"]


def test_detect_function_and_command_share_their_defaults():
    args = cli.build_parser().parse_args(["detect", "x.mp4", "--checkpoint", "c.pt"])
    defaults = inspect.signature(detect).parameters
    assert defaults["min_event_frames"].default == args.min_event_frames == 3
    assert defaults["event_gap"].default == args.event_gap == 5
    assert defaults["reconnect_seconds"].default == args.reconnect_seconds


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_option_of_every_command_has_help_and_heavy_ones_take_threads(capsys):
    parser = cli.build_parser()
    commands = _subcommands(parser)
    assert set(commands) == {"demo", "synth", "prepare", "train", "validate", "calibrate",
                             "evaluate", "floor", "detect", "serve", "finetune", "export",
                             "bench"}
    for name, sub in commands.items():
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help, f"comemory {name} {action.option_strings or action.dest}"
    for name in ("demo", "prepare", "train", "validate", "calibrate", "evaluate", "floor",
                 "detect", "serve", "finetune", "bench"):
        assert any("--threads" in a.option_strings for a in commands[name]._actions), name
    with pytest.raises(SystemExit):
        parser.parse_args(["--help"])
    top = capsys.readouterr().out
    assert "bench" in top and "detect" in top
    with pytest.raises(SystemExit) as version:
        parser.parse_args(["--version"])
    assert version.value.code == 0 and capsys.readouterr().out.startswith("comemory 0.")


def test_threads_option_sets_the_thread_count(scene, tmp_path):
    before = torch.get_num_threads()
    try:
        assert main(["floor", "--root", str(scene), "--out", str(tmp_path / "floor"),
                     "--preset", "tiny", "--cache-dir", str(tmp_path / "cache"),
                     "--threads", "1"]) == 0
        assert torch.get_num_threads() == 1 and cv2.getNumThreads() == 1
    finally:
        torch.set_num_threads(before)
        cv2.setNumThreads(before)


def test_precision_auto_takes_bf16_only_where_it_is_native():
    assert resolve_precision("auto") == ("bf16" if native_bf16() else "fp32")
    assert resolve_precision("fp32") == "fp32" and resolve_precision("bf16") == "bf16"
    with pytest.raises(ValueError):
        resolve_precision("fp16")


def test_upfront_checks_read_no_frames_of_a_folder_dataset(scene, monkeypatch):
    """The checks before preparation open each video's first frame, not every frame."""
    reads = []
    real_imread = cv2.imread
    monkeypatch.setattr(cv2, "imread", lambda *a, **k: reads.append(a[0]) or real_imread(*a, **k))
    videos = read_split(scene, "testing")
    assert len(videos) == 3 and len(reads) == 3
    assert len(read_dataset("frames", scene, "testing")) == 3


def test_importing_comemory_makes_openmp_threads_sleep_unless_the_user_chose():
    import subprocess
    import sys

    probe = "import os, comemory; print(os.environ.get('OMP_WAIT_POLICY'))"
    clean = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}

    def seen(**extra: str) -> str:
        return subprocess.run([sys.executable, "-c", probe], env={**clean, **extra},
                              capture_output=True, text=True, check=True).stdout.strip()

    assert seen() == "PASSIVE"
    assert seen(OMP_WAIT_POLICY="ACTIVE") == "ACTIVE"
