"""The object path (model.input objects): boxes grown and cropped, crops' flows in crop
pixels, one sample per object, a frame scored by its object with the largest flow error,
and a network trained and evaluated on crops end to end."""
from __future__ import annotations

import csv
import json
import re
import shutil
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from comemory.checkpoint import load_checkpoint, model_from_checkpoint
from comemory.config import ObjectsConfig
from comemory.data.crops import crop_flow, crop_frames, frame_boxes, grown, video_boxes
from comemory.data.frames import box_from_model_grid
from comemory.data.model_input import PreparedVideo
from comemory.data.objects import Box
from comemory.data.windows import ObjectWindows
from comemory.detect import Detector, detect
from comemory.detect.annotate import DISPLAY_WIDTH, RED, FramePainter
from comemory.errors import ConfigError
from comemory.evaluate.evaluation import evaluate
from comemory.export import example_inputs, export_model, onnx_engine
from comemory.scoring import FrameScorer
from comemory.scoring.objects import frame_errors_of_objects
from comemory.serve import EventStore
from comemory.serve.database import EventFilter
from comemory.train.loop import train
from comemory.train.validate import validate_checkpoint
from tests.conftest import small_config
from tests.test_serve import FAST_VIDEO, frames_folder, served_to_the_end


def test_a_crops_flow_is_scaled_to_crop_pixels_on_each_axis():
    flow = np.zeros((128, 128, 2), np.float32)
    flow[..., 0], flow[..., 1] = 2.0, 1.0  # 2 px right, 1 px down everywhere
    crop = crop_flow(flow, np.array([8, 16, 64, 16]), 32, units="crop")  # 64 x 16 -> 32 x 32
    assert crop.shape == (32, 32, 2)
    np.testing.assert_allclose(crop[..., 0], 1.0, atol=1e-6)  # halved with the width
    np.testing.assert_allclose(crop[..., 1], 2.0, atol=1e-6)  # doubled with the height


def test_a_crops_flow_may_stay_in_grid_pixels():
    flow = np.zeros((128, 128, 2), np.float32)
    flow[..., 0], flow[..., 1] = 2.0, 1.0
    crop = crop_flow(flow, np.array([8, 16, 64, 16]), 32, units="grid")
    np.testing.assert_allclose(crop[..., 0], 2.0, atol=1e-6)
    np.testing.assert_allclose(crop[..., 1], 1.0, atol=1e-6)


def test_a_crop_keeps_where_in_the_box_the_motion_is():
    flow = np.zeros((64, 64, 2), np.float32)
    flow[20:40, 10:20, 0] = 3.0  # the left half of the box (10..30) moves
    crop = crop_flow(flow, np.array([10, 20, 20, 20]), 32, units="crop")
    assert crop[:, :14, 0].min() > 4.0  # 3 px x 32 / 20
    assert np.abs(crop[:, 18:, 0]).max() < 1e-6


def test_frames_are_cropped_to_the_box():
    frames = np.zeros((3, 64, 64, 1), np.uint8)
    frames[:, 10:20, 30:50] = 200
    crops = crop_frames(frames, np.array([30, 10, 20, 10]), 16)
    assert crops.shape == (3, 16, 16, 1)
    assert crops.min() == 200


def test_boxes_grow_by_the_margin_and_stay_inside_the_frame():
    assert grown(Box(10, 10, 20, 10), 0.1, (64, 64)) == (8, 9, 24, 12)
    assert grown(Box(0, 60, 20, 4), 0.5, (64, 64)) == (0, 58, 30, 6)
    assert grown(Box(5, 5, 4, 4), 0.0, (64, 64)) == (5, 5, 4, 4)


def test_a_grid_box_maps_back_to_the_frames_own_pixels():
    # a 160 x 120 frame on a 64 x 64 grid: stretched, or fitted inside (64 x 48, 8 rows down)
    assert box_from_model_grid(np.array([0, 0, 64, 64]), 120, 160, 64, "squash") == \
        (0, 0, 160, 120)
    assert box_from_model_grid(np.array([16, 16, 8, 32]), 120, 160, 64, "squash") == \
        (40, 30, 20, 60)
    assert box_from_model_grid(np.array([0, 8, 64, 48]), 120, 160, 64, "letterbox") == \
        (0, 0, 160, 120)
    assert box_from_model_grid(np.array([0, 0, 64, 4]), 120, 160, 64, "letterbox") == \
        (0, 0, 160, 1)  # all in the bar: clipped to the frame, one pixel high


def test_every_frame_has_the_scene_box_first_then_its_own():
    rows = np.array([[2, 1, 2, 3, 4], [0, 5, 5, 5, 5], [2, 9, 9, 9, 9]], np.int32)
    per_frame = frame_boxes(rows, 3, 64)
    assert [len(boxes) for boxes in per_frame] == [2, 1, 3]
    assert all((boxes[0] == [0, 0, 64, 64]).all() for boxes in per_frame)
    assert per_frame[2][1:].tolist() == [[1, 2, 3, 4], [9, 9, 9, 9]]


def moving_square_video(frames: int = 14, size: int = 64) -> PreparedVideo:
    """A dark textured floor, empty for 8 frames (the finder learns it), then a bright
    square moving 4 px right a frame."""
    rng = np.random.default_rng(0)
    floor = rng.integers(20, 60, (size, size, 1), dtype=np.uint8)
    images, flows = [], np.zeros((frames - 1, size, size, 2), np.float16)
    for t in range(frames):
        image = floor.copy()
        left = 4 * (t - 8)
        if left >= 0:
            image[20:32, left:left + 12] = 230
            if t > 8:  # flows[t - 1]: frame t - 1 -> t
                flows[t - 1, 20:32, left - 4:left + 8, 0] = 4.0
        images.append(image)
    images = np.stack(images)
    boxes = video_boxes(images, ObjectsConfig(min_area=0.005))
    return PreparedVideo("square", images, flows, (size, size), boxes=boxes)


def test_the_finder_boxes_the_moving_square_and_each_object_is_a_sample():
    video = moving_square_video()
    assert len(video.boxes) > 0
    assert set(video.boxes[:, 0]) == set(range(8, 14))  # nothing on the empty floor
    last = video.boxes[video.boxes[:, 0] == 13]
    assert len(last) == 1
    x, y, width, height = last[0, 1:]
    assert x <= 20 and y <= 20 and x + width >= 32 and y + height >= 32  # square: 20..32
    samples = ObjectWindows([video], past_frames=2, crop_size=16, flow_units="crop")
    per_frame = frame_boxes(video.boxes, 14, 64)
    assert len(samples) == sum(len(per_frame[f]) for f in range(2, 14))
    item = samples[len(samples) - 1]
    assert item["past"].shape == (2, 1, 16, 16) and item["target"].shape == (1, 16, 16)
    assert item["flow"].shape == (2, 16, 16) and item["frame"] == 13
    assert item["target"].max() > 0.5  # the bright square is in its crop
    width = int(item["box"][2])  # 4 px right on the grid, in crop pixels:
    assert float(item["flow"][0].max()) == pytest.approx(4.0 * 16 / width, rel=0.01)
    assert float(item["flow"][1].abs().max()) == 0.0


def test_a_frame_takes_its_object_with_the_largest_flow_error_and_boxes_paint_the_maps():
    rows = {"frames": np.array([2, 2, 2, 3]),
            "boxes": np.array([[0, 0, 8, 8], [0, 0, 4, 4], [4, 4, 4, 4], [0, 0, 8, 8]]),
            "flow_error": np.array([0.1, 0.9, 0.5, 0.2]),
            "frame_error": np.array([0.3, 0.2, 0.7, 0.1]),
            "psnr": np.array([30.0, 20.0, 25.0, 31.0])}
    errors = frame_errors_of_objects("v", rows, size=8, keep_maps=True)
    assert errors.frames.tolist() == [2, 3]
    np.testing.assert_allclose(errors.flow_error, [0.9, 0.2])
    np.testing.assert_allclose(errors.frame_error, [0.2, 0.1])  # the chosen object's own
    np.testing.assert_allclose(errors.psnr, [20.0, 31.0])
    flow_map = errors.flow_maps[0].astype(np.float32)
    assert flow_map[1, 1] == pytest.approx(0.9, abs=1e-3)  # the top-left box
    assert flow_map[6, 6] == pytest.approx(0.5, abs=1e-3)  # the bottom-right box
    assert flow_map[1, 6] == 0.0  # only the scene box, which is not painted
    assert errors.frame_maps[0, 6, 6] == pytest.approx(0.7, abs=1e-3)


@pytest.fixture(scope="module")
def object_run(scene, tmp_path_factory) -> tuple[Path, Path, Path]:
    """(checkpoint, cache, evaluate's folder) of a tiny run on objects' crops."""
    folder = tmp_path_factory.mktemp("objects")
    config = small_config("model.input=objects", "model.crop_size=16", "train.epochs=3")
    checkpoint = train(config, scene, folder / "run", folder / "cache")
    evaluate(checkpoint, scene, folder / "eval", cache_dir=folder / "cache")
    return checkpoint, folder / "cache", folder / "eval"


def test_the_network_trains_and_scores_on_objects(object_run):
    checkpoint, _, evaluated = object_run
    assert torch.load(checkpoint, weights_only=False)["config"]["model"]["input"] == "objects"
    metrics = json.loads((evaluated / "metrics.json").read_text())
    # the synthetic anomalies (fast walkers, foreign and dropped objects) rank above normal
    assert metrics["scores"]["comemory"]["none"]["micro_auc"] > 0.6
    assert metrics["pixel_auroc"] > 0.6  # a pixel scores its box's errors


def live_and_offline_scores(checkpoint: Path, scene: Path, evaluated: Path,
                            out: Path) -> tuple[dict[int, float], dict[int, float]]:
    """Test video 01's scores by frame through ``detect`` (into ``out``) and as
    ``evaluate`` wrote them into ``evaluated``."""
    detect(scene / "testing" / "frames" / "01", checkpoint, out, video=False, progress=False)
    with (out / "01" / "scores.csv").open() as handle:
        live = {int(r["frame"]): float(r["score"]) for r in csv.DictReader(handle) if r["score"]}
    with (evaluated / "scores.csv").open() as handle:
        offline = {int(r["frame"]): float(r["comemory_score"]) for r in csv.DictReader(handle)
                   if r["video"] == "01"}
    assert live.keys() == offline.keys()
    return live, offline


def test_detect_scores_objects_live_as_evaluate_does(object_run, scene, tmp_path):
    checkpoint, _, evaluated = object_run
    live, offline = live_and_offline_scores(checkpoint, scene, evaluated, tmp_path)
    np.testing.assert_allclose([live[f] for f in live], [offline[f] for f in live], atol=1e-4)
    events = json.loads((tmp_path / "01" / "events.json").read_text())["events"]
    assert events, "the fast walker of test video 01 raised no event"
    for event in events:  # each records where its peak was: the top object's box
        x, y, width, height = event["peak_box"]
        assert 0 <= x < x + width <= 160 and 0 <= y < y + height <= 120


def test_the_motion_model_is_fitted_kept_and_scored_live_as_evaluate_does(object_run, scene,
                                                                          tmp_path):
    checkpoint, cache, _ = object_run
    copy = tmp_path / "checkpoint.pt"  # validate --choose rewrites it
    shutil.copy(checkpoint, copy)
    validate_checkpoint(copy, scene, tmp_path / "validation", cache_dir=cache, choose=True,
                        overrides=["score.formula=zscore", "score.motion_model=added"])
    _, config, calibration = model_from_checkpoint(load_checkpoint(copy), copy)
    assert config.score.motion_model == "added"
    assert calibration.statistics.motion_model is not None  # fitted on training objects
    evaluate(copy, scene, tmp_path / "eval", cache_dir=cache)
    live, offline = live_and_offline_scores(copy, scene, tmp_path / "eval", tmp_path / "live")
    np.testing.assert_allclose([live[f] for f in live], [offline[f] for f in live], atol=1e-4)


def test_each_object_is_drawn_with_its_box_and_score(object_run, scene):
    checkpoint, _, _ = object_run
    detector = Detector.from_checkpoint(checkpoint)
    results = [r for r in detector.run(scene / "testing" / "frames" / "01", progress=False)
               if r.objects]
    assert results, "no frame of a test video with walkers had an object"
    result = results[len(results) // 2]
    height, width = result.image.shape[:2]
    for item in result.objects:  # in the frame's own pixels
        assert 0 <= item.x < item.x + item.width <= width
        assert 0 <= item.y < item.y + item.height <= height
    painter = FramePainter(threshold=max(item.score for item in result.objects) - 1e-3)
    drawn = painter.picture(result, in_event=False, alarm=False)
    bare = painter.picture(replace(result, objects=[]), in_event=False, alarm=False)
    changed = np.argwhere((drawn != bare).any(axis=2))
    scale = DISPLAY_WIDTH / width
    for item in result.objects:  # each box's left edge is drawn
        left, top = round(item.x * scale), round(item.y * scale)
        bottom = round((item.y + item.height) * scale)
        edge = changed[(changed[:, 1] == left) & (changed[:, 0] > top) & (changed[:, 0] < bottom)]
        assert len(edge) > 0.8 * (bottom - top - 1)
    top_object = max(result.objects, key=lambda item: item.score)  # above threshold: red
    left, top = round(top_object.x * scale), round(top_object.y * scale)
    bottom = round((top_object.y + top_object.height) * scale)
    assert tuple(drawn[(top + bottom) // 2, left]) == RED


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_the_crop_network_exports(object_run, tmp_path, fmt):
    checkpoint, _, _ = object_run
    path = export_model(checkpoint, tmp_path / f"model.{fmt}", fmt)
    model, config, _ = model_from_checkpoint(load_checkpoint(checkpoint), checkpoint)
    inputs = example_inputs(config, model.past_frames, seed=7)
    assert inputs[0].shape[-1] == 16  # the crop, not the 64 x 64 grid
    with torch.no_grad():
        expected = [t.numpy() for t in FrameScorer(model, config.score).eval()(*inputs)]
        if fmt == "onnx":
            got = onnx_engine(path)(*(t.numpy() for t in inputs))
            got = [got[name] for name in FrameScorer.OUTPUTS]
        else:
            got = [t.numpy() for t in torch.jit.load(str(path))(*inputs)]
    for name, a, b in zip(FrameScorer.OUTPUTS, expected, got, strict=True):
        np.testing.assert_allclose(b, a, atol=1e-4, rtol=1e-4, err_msg=name)


def test_serve_scores_objects_as_detect_does_and_draws_their_boxes(object_run, scene,
                                                                   tmp_path):
    checkpoint, _, _ = object_run
    service = served_to_the_end(checkpoint, scene, tmp_path / "serve")
    street = service.camera("street")
    alone = [r.score for r in Detector.from_checkpoint(checkpoint).run(
        frames_folder(scene, "testing", FAST_VIDEO), progress=False) if r.score is not None]
    together = [score for _, score in street.view.curve]
    np.testing.assert_allclose(together, alone[-len(together):], rtol=1e-4, atol=1e-4)
    result, in_event, alarm = street.view.latest
    assert result.objects, "the last frame of the street camera has no object"
    bare = street.view.painter.picture(replace(result, objects=[]), in_event, alarm)
    assert (street.view.picture() != bare).any()  # the live picture draws the boxes
    events = EventStore(tmp_path / "serve" / "events.db").events(EventFilter(camera="street"))
    assert events and cv2.imread(str(tmp_path / "serve" / "media" / "thumbnails"
                                     / events[-1]["thumbnail"])) is not None


@pytest.mark.parametrize("settings, message", [
    (["model.input=crops"], "model.input must be one of ['frames', 'objects']"),
    (["model.input=objects", "model.crop_size=20"], "model.crop_size must be a multiple of 8"),
    (["model.input=objects", "model.crop_flow=box"], "model.crop_flow must be one of"),
    (["model.input=objects", "model.architecture=mnad"], "needs model.architecture comemory"),
    (["model.input=objects", "model.crop_size=16", "score.patch_size=32"],
     "score.patch_size must be between 1 and model.crop_size (16)"),
    (["objects.margin=2"], "objects.margin must be between 0 and 1"),
])
def test_bad_object_model_settings_are_named(settings, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        small_config(*settings).check()
