"""comemory detect: thresholds and events, streaming sources that fail, causal scores that
match the offline evaluation, every output, and the exported model's parity."""
from __future__ import annotations

import csv
import json
import logging
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from comemory.alerts import (
    AlertPolicy,
    EventGrouper,
    FirstMinuteCheck,
    calibrate_threshold,
    group_events,
    threshold_for,
)
from comemory.alerts.promise import video_threshold
from comemory.checkpoint import load_checkpoint
from comemory.cli import main
from comemory.config import FlowConfig
from comemory.data.flow import flow_identity
from comemory.data.frames import list_frames
from comemory.data.holdout import split_holdout
from comemory.data.model_input import PreparedVideo
from comemory.data.stream import CaptureStream, open_sources
from comemory.detect import Detector, detect
from comemory.detect.video_writer import write_video
from comemory.errors import CheckpointError, ComemoryError, DataError
from comemory.evaluate.evaluation import evaluate
from comemory.evaluate.metrics import alarm_figures
from comemory.export import example_inputs, export_model, onnx_engine
from comemory.scoring import Calibration, FrameScorer

FAST_VIDEO = "01"  # the synthetic scene's test videos hold, by turns: fast, large, against


def test_events_bridge_short_gaps_and_drop_blips():
    grouper = EventGrouper(min_frames=2, max_gap=1, fps=10.0)
    flags = {3: True, 4: True, 6: True, 9: True, 12: True, 13: True}
    events = []
    for frame in range(15):
        events += grouper.update(frame, float(frame), flags.get(frame, False))
    events += grouper.finish()
    # 3-4 and 6 are one normal frame apart: one event; 9 alone is a blip; 12-13 is one
    assert [(e.start_frame, e.end_frame, e.peak_frame) for e in events] == [(3, 6, 6), (12, 13, 13)]
    assert events[0].start_time == pytest.approx(0.3) and events[0].end_time == pytest.approx(0.7)
    assert events[0].frames == 4
    # the whole-sequence helper applies the same rule
    scores = np.array([float(f) if flags.get(f) else -1.0 for f in range(15)])
    again = group_events(np.arange(15), scores, -0.5, min_frames=2, max_gap=1, fps=10.0)
    assert [e.to_dict() for e in again] == [e.to_dict() for e in events]



def test_most_of_the_first_minute_flagged_says_once_the_model_may_not_fit():
    check = FirstMinuteCheck("street", fps=1.0)  # a minute is 60 frames here
    messages = [check.add(flagged=index % 4 != 0) for index in range(200)]
    [message] = [m for m in messages if m]
    assert messages.index(message) == 59 and check.finish() is None  # once, at a minute
    assert message.startswith("45 of the first 60 scored frames of street are above")
    assert "may not fit this camera" in message and "comemory train" in message
    quiet = FirstMinuteCheck("yard", fps=10.0)
    assert not any(quiet.add(flagged=index % 3 == 0) for index in range(1000))
    short = FirstMinuteCheck("door", fps=25.0)  # shorter than a minute: said at its end
    assert not any(short.add(flagged=True) for _ in range(40)) and "40 of the first 40" in \
        short.finish()
    assert FirstMinuteCheck("clip", fps=25.0).finish() is None  # too few frames to say


def test_detect_says_when_the_model_may_not_fit_the_camera(trained_run, tmp_path, caplog):
    checkpoint, scene, _ = trained_run
    source = scene / "training" / "frames" / "01"  # normal footage of the scene
    detect(source, checkpoint, tmp_path / "low", threshold=-1e9, video=False, progress=False)
    assert "may not fit this camera" in caplog.text
    caplog.clear()
    detect(source, checkpoint, tmp_path / "as_set", video=False, progress=False)
    assert "may not fit this camera" not in caplog.text

def test_threshold_gives_the_false_alarm_rate_on_normal_scores():
    normal = np.random.default_rng(0).normal(size=100_000)
    threshold = threshold_for(normal, 0.01)
    assert np.mean(normal > threshold) == pytest.approx(0.01, abs=1e-4)
    with pytest.raises(Exception, match="between 0 and 1"):
        threshold_for(normal, 1.5)


def test_held_out_frames_are_the_end_of_each_video():
    frames = np.zeros((50, 8, 8, 1), np.uint8)
    flows = np.zeros((49, 8, 8, 2), np.float16)
    short = PreparedVideo("short", frames[:4], flows[:3], (8, 8))
    training, held_out = split_holdout([PreparedVideo("a", frames, flows, (8, 8)), short],
                                       0.1, past_frames=2, by="tail")
    assert len(training[0].frames) == 45 and len(training[0].flows) == 44
    # starts 2 frames early so that exactly frames 45-49 are scored
    assert len(held_out) == 1 and len(held_out[0].frames) == 7 and len(held_out[0].flows) == 6
    assert training[1] is short  # too short to split


def test_whole_videos_held_out_are_spread_and_never_trained_on():
    flows = np.zeros((9, 8, 8, 2), np.float16)
    videos = [PreparedVideo(f"v{i}", np.full((10, 8, 8, 1), i, np.uint8), flows, (8, 8))
              for i in range(8)]
    training, held_out = split_holdout(videos, 0.25, past_frames=2, by="videos")
    assert [v.name for v in held_out] == ["v2 (held out)", "v6 (held out)"]
    assert all(len(v.frames) == 10 for v in held_out)  # whole: every frame
    assert [v.name for v in training] == ["v0", "v1", "v3", "v4", "v5", "v7"]
    assert all(v is videos[int(v.name[1])] for v in training)  # untouched
    one = split_holdout(videos[:3], 0.01, past_frames=2, by="videos")[1]
    assert len(one) == 1  # at least one video
    assert split_holdout(videos, 0.0, past_frames=2, by="videos")[1] == []
    with pytest.raises(DataError, match="at least 2 training videos"):
        split_holdout(videos[:1], 0.5, past_frames=2, by="videos")
    with pytest.raises(DataError, match="train.holdout"):
        split_holdout(videos, 0.5, past_frames=2, by="frames")


def test_training_calibrates_the_threshold_on_held_out_frames(trained_run):
    checkpoint, _, _ = trained_run
    calibration = Calibration.from_dict(load_checkpoint(checkpoint)["calibration"])
    assert "tails of 4 training videos" in calibration.extra["threshold_source"]
    normal = np.array(calibration.extra["normal_scores"])
    assert len(normal) >= 4 * 4  # four training videos of 48 frames, 10 % each held out
    assert calibration.false_alarm_rate == 0.01
    # per video (alert.threshold_by): each tail is a calibration video; four back 80 %
    tails = [np.array(v) for v in calibration.extra["video_scores"]]
    promise = video_threshold(tails, 0.01, 0.9)
    assert len(tails) == 4 and calibration.threshold == pytest.approx(promise.threshold)
    assert calibration.extra["promise"]["confidence"] == pytest.approx(0.8)
    policy = AlertPolicy.from_calibration(calibration, false_alarm_rate=0.2)
    assert policy.threshold == pytest.approx(video_threshold(tails, 0.2, 0.9).threshold)
    # pooled frames, as before: the frames' quantile, the video-level promise still said
    calibrate_threshold(calibration, tails, 0.01, "tails", by="frames")
    assert calibration.threshold == pytest.approx(threshold_for(np.concatenate(tails), 0.01))
    pooled = AlertPolicy.from_calibration(calibration)
    assert "the pooled frames' quantile" in pooled.statement()
    assert "set by hand" in AlertPolicy.from_calibration(calibration, threshold=3.0).statement()


def live_column(row: dict) -> str:
    """The column of evaluate's scores.csv that detect outputs live: the causal-smoothed
    score where the checkpoint's settings smooth it, the raw one otherwise."""
    return "comemory_causal_score" if "comemory_causal_score" in row else "comemory_score"


def test_streaming_scores_equal_the_offline_evaluation(trained_run, tmp_path):
    """Causal, frame by frame, from the image files: the same scores as `evaluate` computes
    from its cache."""
    checkpoint, data, cache = trained_run
    evaluate(checkpoint, data, tmp_path / "eval", cache)
    with open(tmp_path / "eval" / "scores.csv") as handle:
        offline = {int(r["frame"]): float(r[live_column(r)])
                   for r in csv.DictReader(handle) if r["video"] == FAST_VIDEO}
    detector = Detector.from_checkpoint(checkpoint)
    results = list(detector.run(data / "testing" / "frames" / FAST_VIDEO, progress=False))
    assert [r.index for r in results] == list(range(48))
    assert all(r.score is None for r in results[:2])  # two past frames needed
    live = {r.index: r.score for r in results[2:]}
    assert live.keys() == offline.keys()
    frames = sorted(live)
    np.testing.assert_allclose([live[f] for f in frames], [offline[f] for f in frames],
                               rtol=1e-4, atol=1e-4)


def test_detect_scores_the_location_formula_live_as_evaluate_does(trained_run, tmp_path):
    """Per-pixel statistics set by `validate` reach `detect`: the live scores equal the
    offline ones, and differ from the frame-wide formula's."""
    checkpoint, data, cache = trained_run
    copy = tmp_path / "checkpoint.pt"
    copy.write_bytes(checkpoint.read_bytes())
    assert main(["validate", "--checkpoint", str(copy), "--data", str(data), "--cache-dir",
                 str(cache), "--choose", "--set", "score.formula=location"]) == 0
    state = load_checkpoint(copy)
    assert state["config"]["score"]["formula"] == "location"  # too few frames to choose
    assert tuple(state["calibration"]["pixel_statistics"].shape) == (4, 64, 64)  # tiny: 64 x 64
    evaluate(copy, data, tmp_path / "eval", cache)
    with open(tmp_path / "eval" / "scores.csv") as handle:
        offline = {int(r["frame"]): float(r[live_column(r)])
                   for r in csv.DictReader(handle) if r["video"] == FAST_VIDEO}
    results = list(Detector.from_checkpoint(copy).run(data / "testing" / "frames" / FAST_VIDEO,
                                                      progress=False))
    live = {r.index: r.score for r in results if r.score is not None}
    frames = sorted(offline)
    assert sorted(live) == frames
    np.testing.assert_allclose([live[f] for f in frames], [offline[f] for f in frames],
                               rtol=1e-3, atol=1e-3)
    thesis = [r.score for r in Detector.from_checkpoint(checkpoint).run(
        data / "testing" / "frames" / FAST_VIDEO, progress=False) if r.score is not None]
    assert not np.allclose(thesis, [live[f] for f in frames], atol=0.1)


def test_evaluate_says_whether_the_threshold_keeps_its_promise(trained_run, tmp_path):
    checkpoint, data, cache = trained_run
    metrics = evaluate(checkpoint, data, tmp_path / "eval", cache, fps=10.0)
    threshold = load_checkpoint(checkpoint)["calibration"]["threshold"]
    with open(tmp_path / "eval" / "scores.csv") as handle:
        rows = list(csv.DictReader(handle))
    column = live_column(rows[0])
    flagged = np.array([float(r[column]) > threshold for r in rows])
    truth = np.array([r["label"] == "1" for r in rows])
    alerts = metrics["alerts"]
    assert alerts["score"] + "_score" == column and alerts["threshold"] == threshold
    assert alerts["normal_frames_flagged"] == pytest.approx(flagged[~truth].mean())
    assert alerts["anomalous_frames_flagged"] == pytest.approx(flagged[truth].mean())
    assert alerts["anomalous_frames_flagged"] > alerts["normal_frames_flagged"]
    # the events detect would raise, as an operator counts them
    by_video = {}
    for r in rows:
        by_video.setdefault(r["video"], []).append((float(r[column]), int(r["label"])))
    events = [[(e.start_frame, e.end_frame) for e in group_events(
        np.arange(len(v)), np.array([score for score, _ in v]), threshold)]
        for v in by_video.values()]
    labels = [np.array([label for _, label in v]) for v in by_video.values()]
    assert {k: alerts[k] for k in ("events", "false_events", "spans_alarmed")} == \
        {k: alarm_figures(labels, events, 10.0)[k] for k in ("events", "false_events",
                                                             "spans_alarmed")}
    assert alerts["anomalous_spans"] == sum(len(labels_runs(v)) for v in labels)
    assert alerts["false_events_per_hour"] is not None


def labels_runs(labels: np.ndarray) -> list[int]:
    return [i for i in range(len(labels)) if labels[i] and (i == 0 or not labels[i - 1])]


def test_alarm_figures_on_a_hand_made_series():
    """Two videos at 10 frames/s: 13 normal frames; spans (3-5), (0-1), (8-9); events
    (4-5) late by one frame, (8-9) touching no anomaly, (0-0) on time."""
    labels = [np.array([0, 0, 0, 1, 1, 1, 0, 0, 0, 0]), np.array([1, 1, 0, 0, 0, 0, 0, 0, 1, 1])]
    figures = alarm_figures(labels, [[(4, 5), (8, 9)], [(0, 0)]], fps=10.0)
    assert figures["events"] == 3 and figures["false_events"] == 1
    assert figures["false_events_per_hour"] == pytest.approx(1 / (13 / 10 / 3600))
    assert figures["false_events_per_1000_normal_frames"] == pytest.approx(1000 / 13)
    assert figures["anomalous_spans"] == 3 and figures["spans_alarmed"] == pytest.approx(2 / 3)
    assert figures["median_delay_frames"] == 0.5 and figures["median_delay_seconds"] == 0.05
    early = alarm_figures([np.array([0, 1, 1, 1])], [[(0, 2)]], fps=None)  # began before
    assert early["median_delay_frames"] == 0 and early["median_delay_seconds"] is None
    assert early["false_events_per_hour"] is None and early["false_events"] == 0
    missed = alarm_figures([np.array([0, 1, 1, 0])], [[]], fps=10.0)
    assert missed["spans_alarmed"] == 0 and missed["median_delay_frames"] is None


@pytest.mark.parametrize("native_letterbox", [False, True])
def test_detect_and_evaluate_score_an_mp4_alike(trained_run, tmp_path, native_letterbox):
    """The same video file through `evaluate` (the `videos` layout, cached flows) and
    through `detect` (live flows): the same score for every frame; also with the flow
    measured at the video's own resolution and the frames letterboxed."""
    checkpoint, data, _ = trained_run
    if native_letterbox:
        state = load_checkpoint(checkpoint)
        state["config"]["flow"]["at"] = "native"
        state["config"]["model"]["resize"] = "letterbox"
        state["flow"] = flow_identity(FlowConfig(**state["config"]["flow"]))
        checkpoint = tmp_path / "native.pt"
        torch.save(state, checkpoint)
    root = tmp_path / "data"
    (root / "testing").mkdir(parents=True)
    images = [cv2.imread(str(p)) for p in list_frames(data / "testing" / "frames" / FAST_VIDEO)]
    write_video(images, root / "testing" / "street.mp4", fps=10.0)
    labels = np.load(data / "frame_labels_synth.npy").reshape(3, 48)[0]
    anomalous = np.flatnonzero(labels)
    (root / "labels.csv").write_text(f"video,start_frame,end_frame\n"
                                     f"street,{anomalous[0]},{anomalous[-1]}\n")
    evaluate(checkpoint, root, tmp_path / "eval", tmp_path / "cache", dataset="videos")
    with open(tmp_path / "eval" / "scores.csv") as handle:
        offline = [float(r[live_column(r)]) for r in csv.DictReader(handle)]
    detect(root / "testing" / "street.mp4", checkpoint, tmp_path / "live", video=False,
           progress=False)
    lines = (tmp_path / "live" / "street" / "scores.jsonl").read_text().splitlines()
    live = [json.loads(line)["score"] for line in lines][2:]
    np.testing.assert_allclose(live, offline, rtol=1e-4, atol=1e-4)


def test_detect_flags_the_anomaly_in_an_mp4_and_writes_every_output(trained_run, tmp_path):
    checkpoint, data, _ = trained_run
    video = tmp_path / "street.mp4"
    images = [cv2.imread(str(p)) for p in list_frames(data / "testing" / "frames" / FAST_VIDEO)]
    write_video(images, video, fps=10.0)
    labels = np.load(data / "frame_labels_synth.npy").reshape(3, 48)[0]
    assert main(["detect", str(video), "--checkpoint", str(checkpoint),
                 "--out", str(tmp_path / "out"), "--min-event-frames", "1",
                 "--event-gap", "0"]) == 0
    folder = tmp_path / "out" / "street"
    for name in ("scores.csv", "scores.jsonl", "events.json", "annotated.mp4", "scores.png"):
        assert (folder / name).stat().st_size > 0, name
    rows = [json.loads(line) for line in (folder / "scores.jsonl").read_text().splitlines()]
    assert [r["frame"] for r in rows] == list(range(48))
    assert rows[5]["time"] == pytest.approx(0.5)
    flagged = np.array([r["anomalous"] for r in rows])
    anomalous = labels.astype(bool)
    assert flagged[anomalous].mean() >= 0.5  # most frames with the fast object are flagged
    assert flagged[~anomalous].mean() <= 0.1  # few false alarms on compressed normal frames
    events = json.loads((folder / "events.json").read_text())
    assert events["complete"] and events["events"]
    assert all(anomalous[e["start_frame"]:e["end_frame"] + 1].any() for e in events["events"])
    capture = cv2.VideoCapture(str(folder / "annotated.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 48
    capture.release()
    with open(folder / "scores.csv") as handle:
        assert len(list(csv.DictReader(handle))) == 48


class _FlakyCapture:
    """A stand-in for cv2.VideoCapture: ``frames`` good frames, then read() fails."""

    def __init__(self, frames: int, opens: bool = True):
        self.left, self.opens = frames, opens

    def isOpened(self) -> bool:  # noqa: N802 (OpenCV's name)
        return self.opens

    def read(self):
        if self.left == 0:
            return False, None
        self.left -= 1
        return True, np.full((60, 80, 3), 100 + self.left, np.uint8)

    def get(self, prop: int) -> float:
        return 10.0 if prop == cv2.CAP_PROP_FPS else 0.0

    def release(self) -> None:
        pass


def test_a_dropped_stream_is_reopened_then_given_up(trained_run, caplog):
    checkpoint, _, _ = trained_run
    opened = [_FlakyCapture(5), _FlakyCapture(0, opens=False), _FlakyCapture(4)]
    opened += [_FlakyCapture(0, opens=False)] * 100
    waits = []
    stream = CaptureStream("rtsp://camera", live=True, reconnect_seconds=10,
                           opener=lambda _: opened.pop(0), sleep=waits.append)
    detector = Detector.from_checkpoint(checkpoint)
    results = []
    with caplog.at_level(logging.WARNING), pytest.raises(DataError, match="rtsp://camera"):
        for result in detector.run_stream(stream, progress=False):
            results.append(result)
    assert [r.index for r in results] == list(range(9))
    # after the drop the detector starts again: two frames to warm up
    assert [r.score is None for r in results] == [True] * 2 + [False] * 3 + [True] * 2 + \
        [False] * 2
    # first drop: one failed reopen, then back; second drop: waits grow until 10 s are spent
    assert waits == [0.5, 1.0, 0.5, 1.0, 2.0, 4.0, 8.0]
    assert "reconnected" in caplog.text


def test_corrupt_frames_are_skipped_and_sizes_and_colours_are_accepted(trained_run, tmp_path,
                                                                         caplog):
    checkpoint, data, _ = trained_run
    folder = tmp_path / "frames"
    shutil.copytree(data / "testing" / "frames" / "02", folder)
    broken = list_frames(folder)[10]
    broken.write_bytes(b"not a jpeg")
    detector = Detector.from_checkpoint(checkpoint)
    with caplog.at_level(logging.WARNING):
        results = list(detector.run(folder, progress=False))
    assert broken.name in caplog.text
    assert 10 not in [r.index for r in results] and len(results) == 47
    assert [r.score is None for r in results[9:13]] == [False, True, True, False]
    # grey, colour and a larger size of the same frames: the same scores
    images = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in list_frames(folder)[:5]]
    scores = {}
    for name, convert in {"grey": lambda g: g,
                          "colour": lambda g: cv2.cvtColor(g, cv2.COLOR_GRAY2BGR),
                          # the same picture at twice the size: resizing it to the
                          # model's input gives (up to rounding) the same frames
                          "larger": lambda g: g.repeat(2, axis=0).repeat(2, axis=1)}.items():
        detector.reset()
        scores[name] = [detector.score_frame(convert(g)).score for g in images][2:]
    assert scores["grey"] == pytest.approx(scores["colour"])
    assert scores["larger"] == pytest.approx(scores["grey"], abs=0.05)
    with pytest.raises(DataError, match="uint8"):
        detector.score_frame(np.zeros((10, 10), np.float32))


def test_sources_that_cannot_be_opened_are_named(tmp_path, capsys, trained_run):
    checkpoint, _, _ = trained_run
    with pytest.raises(DataError, match="nowhere.mp4: no such file"):
        open_sources(tmp_path / "nowhere.mp4")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DataError, match="not a video file"):
        open_sources(tmp_path / "notes.txt")
    (tmp_path / "broken.mp4").write_bytes(b"\x00" * 100)
    with pytest.raises(DataError, match="broken.mp4: cannot open"):
        open_sources(tmp_path / "broken.mp4")
    (tmp_path / "empty").mkdir()
    assert main(["detect", str(tmp_path / "empty"), "--checkpoint", str(checkpoint)]) == 2
    assert "holds neither frames" in capsys.readouterr().err


def test_a_checkpoint_without_a_threshold_needs_one(trained_run, tmp_path):
    checkpoint, _, _ = trained_run
    state = load_checkpoint(checkpoint)
    state["calibration"] = {k: v for k, v in state["calibration"].items()
                            if k not in ("threshold", "normal_scores")}
    old = tmp_path / "old.pt"
    torch.save(state, old)
    calibration = Detector.from_checkpoint(old).calibration
    with pytest.raises(CheckpointError, match="pass --threshold"):
        AlertPolicy.from_calibration(calibration, path=old)
    by_hand = AlertPolicy.from_calibration(calibration, threshold=1.5)
    assert (by_hand.threshold, by_hand.false_alarm_rate) == (1.5, None)
    own = AlertPolicy.from_calibration(Detector.from_checkpoint(checkpoint).calibration)
    looser = AlertPolicy.from_calibration(Detector.from_checkpoint(checkpoint).calibration,
                                          false_alarm_rate=0.5)
    assert looser.threshold < own.threshold and looser.false_alarm_rate == 0.5


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_exported_model_agrees_with_pytorch(trained_run, tmp_path, fmt):
    checkpoint, _, _ = trained_run
    path = export_model(checkpoint, tmp_path / f"model.{fmt}", fmt)
    state = load_checkpoint(checkpoint)
    from comemory.checkpoint import model_from_checkpoint

    model, config, _ = model_from_checkpoint(state, checkpoint)
    scorer = FrameScorer(model, config.score).eval()
    inputs = example_inputs(config, model.past_frames, seed=7)  # not the tracing inputs
    with torch.no_grad():
        expected = [t.numpy() for t in scorer(*inputs)]
    if fmt == "onnx":
        got = onnx_engine(path)(*(t.numpy() for t in inputs))
        got = [got[name] for name in FrameScorer.OUTPUTS]
    else:
        with torch.no_grad():
            got = [t.numpy() for t in torch.jit.load(str(path))(*inputs)]
    for name, a, b in zip(FrameScorer.OUTPUTS, expected, got, strict=True):
        np.testing.assert_allclose(b, a, atol=1e-4, rtol=1e-4, err_msg=name)


def test_detect_with_the_onnx_engine_gives_the_torch_scores(trained_run, tmp_path):
    checkpoint, data, _ = trained_run
    model_path = export_model(checkpoint, tmp_path / "model.onnx", "onnx")
    source = data / "testing" / "frames" / FAST_VIDEO
    torch_run = detect(source, checkpoint, tmp_path / "torch", video=False, progress=False)
    onnx_run = detect(source, checkpoint, tmp_path / "onnx", video=False, engine="onnx",
                      onnx_path=model_path, progress=False)
    assert torch_run[0]["events"] == onnx_run[0]["events"]

    def scores(folder):
        lines = (folder / FAST_VIDEO / "scores.jsonl").read_text().splitlines()
        return [json.loads(line)["score"] for line in lines][2:]

    np.testing.assert_allclose(scores(tmp_path / "onnx"), scores(tmp_path / "torch"), atol=1e-3)
    import onnx  # an export made before the motion part was an output: a clear refusal
    graph = onnx.load(str(model_path))
    kept = [output for output in graph.graph.output if output.name != "motion"]
    del graph.graph.output[:]
    graph.graph.output.extend(kept)
    onnx.save(graph, str(tmp_path / "old.onnx"))
    with pytest.raises(ComemoryError, match=r"old.onnx: exported without the outputs \['motion'\]"):
        onnx_engine(tmp_path / "old.onnx")


class _RecordedVideo:
    """Stands in for the annotated MP4: keeps (frame, in_event) as the writer adds them."""

    def __init__(self):
        self.frames: list[tuple[int, bool]] = []

    def add(self, result, in_event: bool, alarm: bool, threshold: float | None = None) -> None:
        self.frames.append((result.index, in_event))

    def close(self) -> None:
        pass


HAND_MADE = "..#.....##.##.....##......######"  # a blip, an event with a gap, a short run, an event


@pytest.mark.parametrize("pattern", [
    HAND_MADE,
    *["".join(np.random.default_rng(seed).choice([".", "#"], size=60, p=[0.6, 0.4]))
      for seed in range(6)],
])
def test_the_annotated_video_marks_exactly_the_frames_of_the_events(tmp_path, pattern):
    from comemory.detect import FrameResult
    from comemory.detect.outputs import EventsFile, VideoOutput

    policy = AlertPolicy(threshold=0.0, min_event_frames=3, event_gap=1)
    alerts = policy.watch("v", 10.0)
    recorded = _RecordedVideo()
    sinks = [VideoOutput(recorded, alerts),
             EventsFile(tmp_path / "events.json", policy, alerts, 10.0)]
    for index, mark in enumerate(pattern):
        score = None if index < 2 else (1.0 if mark == "#" else -1.0)
        verdict = alerts.add(index, score)
        for sink in sinks:
            sink.add(FrameResult("v", index, None, score), verdict)
        assert len(recorded.frames) >= index - 5  # the video lags by a few frames at most
    closed = alerts.finish()
    for sink in sinks:
        sink.close(closed)
    events = json.loads((tmp_path / "events.json").read_text())["events"]
    in_events = {f for e in events for f in range(e["start_frame"], e["end_frame"] + 1)}
    assert recorded.frames == [(i, i in in_events) for i in range(len(pattern))]
    if pattern == HAND_MADE:
        assert [(e["start_frame"], e["end_frame"]) for e in events] == [(8, 12), (26, 31)]


def test_live_detection_imports_no_training_or_offline_code():
    """``detect`` and ``serve`` load the detector, the policy and the sinks, not the
    training loop, the cache of prepared videos or the offline scoring loops."""
    code = ("import sys, comemory.detect, comemory.serve.recorder; "
            "print(' '.join(sorted(m for m in sys.modules if m.startswith('comemory'))))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout.split()
    assert "comemory.detect.detector" in loaded and "comemory.alerts" in loaded
    for training_side in ("comemory.train.loop", "comemory.data.cache", "comemory.data.holdout",
                          "comemory.data.windows", "comemory.scoring.offline",
                          "comemory.train.choice", "comemory.train.validation_set",
                          "comemory.evaluate.evaluation", "comemory.data.pseudo_anomalies"):
        assert training_side not in loaded
