"""Frame folders, labels, synthetic scenes, configs: normal use and bad input."""
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from comemory import storage
from comemory.config import apply_overrides, load_yaml, preset
from comemory.data.cache import load_split
from comemory.data.datasets import read_dataset
from comemory.data.frames import read_frame
from comemory.data.labels import FrameLabels, read_ucsd_ranges
from comemory.data.synth import SynthSpec, synthesize
from comemory.data.windows import FrameWindows
from comemory.errors import ConfigError, DataError
from tests.conftest import small_config


def write_video(folder, frames=4, size=(24, 32), ext=".png"):
    folder.mkdir(parents=True)
    for i in range(frames):
        cv2.imwrite(str(folder / f"{i:03d}{ext}"), np.full(size, 20 * i, np.uint8))


def test_finds_videos_in_the_ped2_layout(tmp_path):
    write_video(tmp_path / "training" / "frames" / "02", ext=".jpg")
    write_video(tmp_path / "training" / "frames" / "01", frames=5, ext=".tif")
    videos = read_dataset("frames", tmp_path, "training")
    assert [v.name for v in videos] == ["01", "02"]
    assert videos[0].source.frame_count() == 5


def test_missing_or_empty_folders_name_the_path(tmp_path):
    with pytest.raises(DataError, match=r"training/frames: folder not found"):
        read_dataset("frames", tmp_path, "training")
    (tmp_path / "testing" / "frames").mkdir(parents=True)
    with pytest.raises(DataError, match="no video folders"):
        read_dataset("frames", tmp_path, "testing")
    (tmp_path / "testing" / "frames" / "07").mkdir()
    with pytest.raises(DataError, match=r"07: 0 frame\(s\) found"):
        read_dataset("frames", tmp_path, "testing")
    with pytest.raises(DataError, match="dataset folder not found"):
        read_dataset("frames", tmp_path / "nowhere", "testing")
    with pytest.raises(DataError, match="unknown dataset layout 'kitti'"):
        read_dataset("kitti", tmp_path, "testing")


def test_unreadable_image_names_the_file(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image at all")
    with pytest.raises(DataError, match="broken.png: cannot read"):
        read_frame(bad, 32, 1)


def test_read_frame_resizes_and_converts(tmp_path):
    path = tmp_path / "f.png"
    cv2.imwrite(str(path), np.dstack([np.full((24, 32), v, np.uint8) for v in (10, 20, 30)]))
    assert read_frame(path, 16, 1).shape == (16, 16, 1)
    rgb = read_frame(path, 16, 3)
    assert rgb.shape == (16, 16, 3) and tuple(rgb[0, 0]) == (30, 20, 10)  # BGR on disk -> RGB


def test_labels_split_over_videos_and_mnad_shape_accepted(tmp_path):
    write_video(tmp_path / "testing" / "frames" / "01", frames=3)
    write_video(tmp_path / "testing" / "frames" / "02", frames=4)
    np.save(tmp_path / "frame_labels_x.npy", np.array([[0, 1, 1, 0, 0, 0, 1]]))  # MNAD (1, N)
    videos = read_dataset("frames", tmp_path, "testing")
    assert videos[0].labels.resolve(3, "01").tolist() == [0, 1, 1]
    assert videos[1].labels.resolve(4, "02").tolist() == [0, 0, 0, 1]


def test_label_length_mismatch_names_the_file(tmp_path):
    write_video(tmp_path / "testing" / "frames" / "01", frames=3)
    labels = tmp_path / "frame_labels_short.npy"
    np.save(labels, np.array([0, 1]))
    with pytest.raises(DataError, match="frame_labels_short.npy: 2 labels but the 1 test videos "
                                        "hold 3 frames"):
        read_dataset("frames", tmp_path, "testing", labels)


def test_labels_file_must_be_unique_and_binary(tmp_path):
    write_video(tmp_path / "testing" / "frames" / "01", frames=3)
    assert read_dataset("frames", tmp_path, "testing")[0].labels is None  # unlabelled is fine
    np.save(tmp_path / "frame_labels_a.npy", np.array([0, 2, 1]))
    with pytest.raises(DataError, match="must be 0"):
        read_dataset("frames", tmp_path, "testing")
    np.save(tmp_path / "frame_labels_b.npy", np.array([0, 1, 1]))
    with pytest.raises(DataError, match="several label files"):
        read_dataset("frames", tmp_path, "testing")


def test_synth_is_deterministic_and_labels_match_masks(tmp_path):
    spec = SynthSpec(seed=5, train_videos=1, test_videos=3, frames=30)
    first = synthesize(tmp_path / "a", spec)
    synthesize(tmp_path / "b", spec)
    synthesize(tmp_path / "c", SynthSpec(seed=6, train_videos=1, test_videos=3, frames=30))
    frame = "testing/frames/02/020.png"
    assert (tmp_path / "a" / frame).read_bytes() == (tmp_path / "b" / frame).read_bytes()
    assert (tmp_path / "a" / frame).read_bytes() != (tmp_path / "c" / frame).read_bytes()
    labels = np.load(tmp_path / "a" / "frame_labels_synth.npy")
    assert labels.shape == (90,) and 0 < first["anomalous_test_frames"] == labels.sum() < 90
    masks = sorted((tmp_path / "a" / "testing" / "masks").rglob("*.png"))
    from_masks = [int(cv2.imread(str(m), cv2.IMREAD_GRAYSCALE).any()) for m in masks]
    assert from_masks == labels.tolist()
    for video in range(3):  # every test video holds both classes (macro AUC needs them)
        assert 0 < labels[video * 30:(video + 1) * 30].sum() < 30


@pytest.mark.parametrize("past_frames", [2, 4])
def test_windows_are_aligned_with_their_flow_and_scored_frame(scene, tmp_path, past_frames):
    videos = load_split(scene, "testing", small_config(), tmp_path)
    samples = FrameWindows(videos, past_frames)
    assert len(samples) == sum(len(v.frames) - past_frames for v in videos)
    item = samples[0]
    assert item["frame"] == past_frames and item["video"] == 0
    assert item["past"].shape == (past_frames, 1, 64, 64) and item["flow"].shape == (2, 64, 64)
    assert -1.0 <= item["past"].min() and item["target"].max() <= 1.0
    expected = np.asarray(videos[0].frames[past_frames], np.float32) / 127.5 - 1  # I_{t+1}
    np.testing.assert_allclose(item["target"].permute(1, 2, 0).numpy(), expected, atol=1e-6)
    np.testing.assert_allclose(item["flow"].permute(1, 2, 0).numpy(),
                               videos[0].flows[past_frames - 2])  # F_t: I_{t-1} -> I_t
    assert (videos[0].labels == np.load(scene / "frame_labels_synth.npy")[:len(videos[0].frames)]
            ).all()
    assert videos[0].masks is not None and videos[0].masks.count() == len(videos[0].frames)


def test_config_unknown_key_names_the_key_and_file(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({"train": {"epochs": 3, "epoch": 4}}))
    with pytest.raises(ConfigError, match=r"run.yaml: unknown key train.epoch"):
        load_yaml(path)
    path.write_text(yaml.safe_dump({"training": {"epochs": 3}}))
    with pytest.raises(ConfigError, match="unknown section 'training'"):
        load_yaml(path)


def test_config_layers_and_type_checks(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("model: {width: 0.25}\ntrain: {epochs: 2}\n")
    config = apply_overrides(load_yaml(path, base=preset("cpu")), ["train.epochs=5"])
    assert config.model.width == 0.25 and config.model.image_size == 128  # preset kept
    assert config.train.epochs == 5
    with pytest.raises(ConfigError, match="train.epochs must be int"):
        apply_overrides(config, ["train.epochs=many"])
    with pytest.raises(ConfigError, match="expected section.key=value"):
        apply_overrides(config, ["epochs=5"])
    with pytest.raises(ConfigError, match="unknown preset"):
        preset("huge")
    with pytest.raises(ConfigError, match="zscore formula only"):
        apply_overrides(config, ["score.zscore_motion_weight=1"]).check()  # formula: thesis
    with pytest.raises(ConfigError, match="not found"):
        load_yaml(tmp_path / "missing.yaml")


PED2 = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ped2"


@pytest.mark.skipif(not PED2.is_dir(), reason="real UCSD Ped2 not found at ../shared/data/ped2")
def test_reads_the_real_ped2_layout():
    training = read_dataset("frames", PED2, "training")
    testing = read_dataset("frames", PED2, "testing")
    assert len(training) == 16 and sum(v.source.frame_count() for v in training) == 2550
    assert len(testing) == 12
    counts = [v.source.frame_count() for v in testing]
    labels = [v.labels.resolve(n, v.name) for v, n in zip(testing, counts)]
    assert sum(int(x.sum()) for x in labels) == 1648
    assert all(v.masks.count() == n for v, n in zip(testing, counts))
    masks = testing[3].masks.load()  # the masks agree with the frame labels
    assert (masks.reshape(len(masks), -1).any(axis=1) == labels[3]).all()
    assert testing[0].source.resolution() == (240, 360)
    # the official UCSDped2.m ranges give the same labels as the .npy
    for spans, truth, n in zip(read_ucsd_ranges(PED2 / "UCSDped2.m"), labels, counts):
        assert (FrameLabels(PED2, spans=spans).resolve(n, "") == truth).all()


def test_atomic_writes_get_ordinary_permissions(tmp_path):
    storage.write_text(tmp_path / "metrics.json", "{}")
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "metrics.json").stat().st_mode & 0o777 == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]  # no temporary left


def test_settings_of_the_old_score_section_still_load_under_their_new_names(tmp_path):
    old = tmp_path / "old.yaml"
    old.write_text("score: {patch_size: 4, choose_on_validation: false, offer_location: true,"
                   " choose_rule: best, false_alarm_rate: 0.002}\n")
    config = load_yaml(old)
    assert config.score.patch_size == 4
    assert (config.choose.on_validation, config.choose.offer_location,
            config.choose.rule) == (False, True, "best")
    assert config.alert.false_alarm_rate == 0.002
    assert "false_alarm_rate" not in config.to_dict()["score"]  # written the new way
    both = apply_overrides(config, ["score.false_alarm_rate=0.05", "alert.false_alarm_rate=0.1"])
    assert both.alert.false_alarm_rate == 0.1  # the later --set wins, whichever its name
    with pytest.raises(ConfigError, match="unknown key choose.formula"):
        apply_overrides(config, ["choose.formula=thesis"])
