"""Flow extractors, Middlebury .flo files and the prepared-video cache."""
import json
import shutil

import cv2
import numpy as np
import pytest

from comemory.config import DIS_PRESET_NAMES, FlowConfig
from comemory.data.cache import load_split
from comemory.data.flow import (
    DIS_PRESETS,
    FlowEstimator,
    GridFlow,
    flow_identity,
    read_flo,
    resize_flow,
    write_flo,
)
from comemory.data.frames import content_box
from comemory.errors import ConfigError, DataError
from tests.conftest import small_config


def test_flo_round_trip(tmp_path):
    flow = np.random.default_rng(0).normal(size=(5, 7, 2)).astype(np.float32)
    write_flo(tmp_path / "a.flo", flow)
    np.testing.assert_array_equal(read_flo(tmp_path / "a.flo"), flow)


def test_bad_flo_files_name_the_file(tmp_path):
    (tmp_path / "bad.flo").write_bytes(b"PNG!" + bytes(20))
    with pytest.raises(DataError, match="bad.flo: not a Middlebury"):
        read_flo(tmp_path / "bad.flo")
    write_flo(tmp_path / "cut.flo", np.zeros((4, 4, 2), np.float32))
    (tmp_path / "cut.flo").write_bytes((tmp_path / "cut.flo").read_bytes()[:-8])
    with pytest.raises(DataError, match="cut.flo: header says 4x4"):
        read_flo(tmp_path / "cut.flo")


def test_resize_flow_rescales_vectors():
    flow = np.zeros((10, 20, 2), np.float32)
    flow[..., 0], flow[..., 1] = 4.0, 2.0
    resized = resize_flow(flow, 5)
    np.testing.assert_allclose(resized[2, 2], [1.0, 1.0])  # u * 5/20, v * 5/10


def test_letterboxed_flow_keeps_direction_and_zero_bars():
    flow = np.zeros((10, 20, 2), np.float32)
    flow[..., 0], flow[..., 1] = 4.0, 2.0
    boxed = resize_flow(flow, 8, "letterbox")  # 20 wide -> 8: both scaled by 8/20
    np.testing.assert_allclose(boxed[4, 4], [1.6, 0.8], atol=1e-5)
    np.testing.assert_array_equal(boxed[0, 4], [0.0, 0.0])  # the bar above the picture
    assert content_box(10, 20, 8, "letterbox") == (2, 0, 4, 8)


def test_native_flow_is_measured_at_the_frames_resolution_then_scaled():
    """A 240 x 360 texture shifted 6 px right: at its own resolution the flow is 6 px; on
    a squashed 64 x 64 grid it must read 6 * 64 / 360 px (and v stays 0)."""
    rng = np.random.default_rng(2)
    texture = cv2.GaussianBlur(rng.integers(0, 255, (240, 360)).astype(np.uint8), (7, 7), 2)
    images = [cv2.cvtColor(np.roll(texture, 6 * k, axis=1), cv2.COLOR_GRAY2BGR) for k in (0, 1)]
    grid = GridFlow(FlowConfig(at="native"), 64, 1)
    inputs = [grid.input_frame(image, model_frame=None) for image in images]
    assert inputs[0].shape == (240, 360, 1)
    flow = grid.grid_flow(*inputs)
    assert flow.shape == (64, 64, 2)
    centre = flow[16:48, 16:48]
    assert np.median(centre[..., 0]) == pytest.approx(6 * 64 / 360, abs=0.05)
    assert abs(np.median(centre[..., 1])) < 0.05
    capped = GridFlow(FlowConfig(at="native", longest_side=180), 64, 1)
    assert capped.input_frame(images[0], model_frame=None).shape == (120, 180, 1)
    assert flow_identity(FlowConfig(at="native"))["at"] == "native"
    assert "at" not in flow_identity(FlowConfig())  # old checkpoints keep their identity


def test_every_preset_name_config_accepts_is_an_opencv_preset():
    assert tuple(DIS_PRESETS) == DIS_PRESET_NAMES
    for name in DIS_PRESET_NAMES:
        FlowEstimator(FlowConfig(preset=name))
    with pytest.raises(ConfigError, match="flow.preset 'slow' unknown"):
        flow_identity(FlowConfig(preset="slow"))


def test_native_flows_through_the_cache(scene, tmp_path):
    native = load_split(scene, "training", small_config("flow.at=native"), tmp_path)
    model = load_split(scene, "training", small_config(), tmp_path)
    assert native[0].flows.shape == model[0].flows.shape  # both on the model grid
    assert not np.array_equal(native[0].flows, model[0].flows)  # two entries, not one


@pytest.mark.parametrize("method", ["dis", "farneback"])
def test_extractors_see_a_rightward_shift(method):
    rng = np.random.default_rng(1)
    texture = cv2.GaussianBlur(rng.integers(0, 255, (64, 64)).astype(np.uint8), (5, 5), 1.5)
    frames = np.stack([texture, np.roll(texture, 2, axis=1)])[..., None]
    flow = GridFlow(FlowConfig(method=method), 64, 1).video_flows(frames)
    assert flow.shape == (1, 64, 64, 2)
    centre = flow[0, 16:48, 16:48]
    assert np.median(centre[..., 0]) == pytest.approx(2.0, abs=0.3)  # u: frame t -> t+1
    assert abs(np.median(centre[..., 1])) < 0.3


def test_unknown_flow_method_or_preset():
    with pytest.raises(ConfigError, match="flow.method 'raft'"):
        GridFlow(FlowConfig(method="raft"), 64, 1)
    with pytest.raises(ConfigError, match="flow.preset 'slow'"):
        GridFlow(FlowConfig(preset="slow"), 64, 1)


@pytest.fixture
def count_flow_calls(monkeypatch):
    calls = []
    original = GridFlow.video_flows

    def counting(self, inputs):
        calls.append(self.estimator.config.preset)
        return original(self, inputs)

    monkeypatch.setattr(GridFlow, "video_flows", counting)
    return calls


def test_cache_hit_miss_and_recorded_extractor(scene, tmp_path, count_flow_calls):
    config = small_config()
    first = load_split(scene, "training", config, tmp_path)
    assert len(count_flow_calls) == len(first)  # miss: every video computed once
    again = load_split(scene, "training", config, tmp_path)
    assert len(count_flow_calls) == len(first)  # hit: nothing computed
    np.testing.assert_array_equal(again[0].flows, first[0].flows)
    assert again[0].flows.dtype == np.float16

    config.flow.preset = "fast"  # another extractor setting: a miss, stored beside the first
    load_split(scene, "training", config, tmp_path)
    assert count_flow_calls[len(first):] == ["fast"] * len(first)
    records = [json.loads(p.read_text()) for p in tmp_path.rglob("flow-*.json")]
    assert {r["preset"] for r in records} == {"medium", "fast"}
    assert all(r["method"] == "dis" for r in records)


def test_half_written_cache_entry_is_computed_again(scene, tmp_path, count_flow_calls):
    config = small_config()
    load_split(scene, "training", config, tmp_path)
    done = len(count_flow_calls)
    record = next(tmp_path.rglob("flow-*.json"))
    record.unlink()  # as if killed after the .npy but before its record
    load_split(scene, "training", config, tmp_path)
    assert len(count_flow_calls) == done + 1


def test_precomputed_flo_flows(scene, tmp_path):
    frames_dir = scene / "training" / "frames"
    for video in sorted(frames_dir.iterdir()):
        count = len(list(video.iterdir()))
        for k in range(count - 1):
            flow = np.full((120, 160, 2), [1.6, 0.0], np.float32)  # 1.6 px right, 160 wide
            write_flo(tmp_path / "flo" / "training" / video.name / f"{k:03d}.flo", flow)
    config = small_config("flow.method=flo", f"flow.flo_dir={tmp_path / 'flo'}")
    videos = load_split(scene, "training", config, tmp_path / "cache")
    np.testing.assert_allclose(videos[0].flows[0][..., 0], 1.6 * 64 / 160, atol=1e-3)
    first_video = sorted(frames_dir.iterdir())[0].name
    for path in sorted((tmp_path / "flo" / "training" / first_video).iterdir()):
        write_flo(tmp_path / "other" / "training" / first_video / path.name,
                  np.full((120, 160, 2), [0.0, 2.4], np.float32))
    for video in sorted((tmp_path / "flo" / "training").iterdir())[1:]:
        shutil.copytree(video, tmp_path / "other" / "training" / video.name)
    other = small_config("flow.method=flo", f"flow.flo_dir={tmp_path / 'other'}")
    videos = load_split(scene, "training", other, tmp_path / "cache")  # same cache, new flows
    np.testing.assert_allclose(videos[0].flows[0][..., 1], 2.4 * 64 / 120, atol=1e-3)
    missing = next((tmp_path / "flo" / "training").iterdir())
    next(missing.iterdir()).unlink()
    with pytest.raises(DataError, match=r"found \d+ .flo files, expected"):
        load_split(scene, "training", config, tmp_path / "cache2")
