"""Validation without test labels: pseudo-anomalies, their AUCs, the choices made on them,
and the model options (MNAD's memory details, motion skips, cosine schedule) they judge."""
import json

import cv2
import numpy as np
import pytest
import torch

from comemory.checkpoint import asked_config, config_from_checkpoint, load_checkpoint
from comemory.cli import main
from comemory.config import ModelConfig, ScoreConfig, TrainConfig
from comemory.data.model_input import PreparedVideo, prepare_images
from comemory.data.pseudo_anomalies import (
    FEATHER,
    KINDS,
    feathered_mask,
    make_clips,
    moving_patch,
    object_clip,
    speed_clip,
)
from comemory.model import Memory, build_model
from comemory.model.layers import Decoder
from comemory.scoring import VideoErrors
from comemory.train import choice
from comemory.train.choice import CAUSAL_WINDOWS, LAMBDAS, pick_setting
from comemory.train.loop import learning_rate
from comemory.train.validation_set import ValidationSet, bootstrap_error, kind_aucs
from tests.conftest import small_config


def textured_walk(frames: int = 12, step: int = 2, size: tuple[int, int] = (96, 144)
                  ) -> np.ndarray:
    """uint8 BGR (frames, H, W, 3): a smooth random texture sliding ``step`` px right per
    frame."""
    rng = np.random.default_rng(4)
    height, width = size
    texture = cv2.GaussianBlur(rng.integers(0, 255, (height, width + step * frames))
                               .astype(np.uint8), (7, 7), 2)
    grey = np.stack([texture[:, step * (frames - k):step * (frames - k) + width]
                     for k in range(frames)])
    return np.repeat(grey[..., None], 3, axis=-1)


def test_speed_pseudo_anomaly_multiplies_the_measured_flow():
    tail = textured_walk()
    config = small_config("flow.at=native", "model.image_size=64")
    normal = prepare_images("normal", tail, config)
    fast = speed_clip("v", tail, stride=3)
    assert fast.labels.tolist() == [1] * 4
    sped = prepare_images("fast", fast.images, config)
    centre = np.s_[:, 16:48, 16:48, 0]
    base = np.median(np.asarray(normal.flows, np.float32)[centre])
    assert base == pytest.approx(2 * 64 / 144, rel=0.15)  # 2 px at 144 wide, on a 64 grid
    assert np.median(np.asarray(sped.flows, np.float32)[centre]) == pytest.approx(3 * base,
                                                                                 rel=0.15)


@pytest.mark.parametrize("moving", [True, False])
def test_pasted_object_is_where_the_labels_say(moving):
    tail = textured_walk(frames=15)
    rng = np.random.default_rng(0)
    patch = np.full((20, 20, 3), 255, np.uint8)
    clip = object_clip("v", tail, patch, moving, rng)
    onset = 5  # a third of 15 frames
    assert clip.labels.tolist() == [0] * onset + [1] * (15 - onset)
    for t in range(15):
        changed = np.any(clip.images[t] != tail[t], axis=-1)
        if clip.labels[t] == 0:
            assert clip.boxes[t] is None and not changed.any()
            continue
        top, left, height, width = clip.boxes[t]
        inside = np.zeros_like(changed)
        inside[top:top + height, left:left + width] = True
        assert not changed[~inside].any()  # nothing changed outside the box
        ramp = round(FEATHER * 20)
        core = clip.images[t][top + ramp:top + height - ramp, left + ramp:left + width - ramp]
        assert (core == 255).all()  # the object fills the box but for its fading rim
        edge = clip.images[t][top, left + width // 2].astype(int)  # on the rim: mostly what
        under = tail[t][top, left + width // 2].astype(int)  # was under it, so no hard edge
        assert (np.abs(edge - under) < np.abs(edge - 255)).all()
    positions = {clip.boxes[t][:2] for t in range(onset, 15)}
    assert (len(positions) > 5) if moving else (len(positions) == 1)


def test_feathered_mask_fades_from_the_edges_to_one_inside():
    mask = feathered_mask(20, feather=0.25)  # fades over 5 pixels from each edge
    assert mask.shape == (20, 20)
    assert (mask[5:15, 5:15] == 1).all()
    assert 0 < mask[0, 10] < 0.2 and mask[0, 0] == mask[0, 10]  # the lower of two ramps
    middle_row = mask[10]
    assert (np.diff(middle_row[:6]) > 0).all() and (np.diff(middle_row[14:]) < 0).all()
    np.testing.assert_array_equal(mask, mask.T)


def test_moving_patch_is_cut_where_the_frames_change():
    frames = np.zeros((3, 60, 80, 3), np.uint8)
    frames[1:, 30:40, 50:60] = 200  # something appears between frames 0 and 1, then stays
    patch = moving_patch(frames[:2], np.random.default_rng(0))
    assert patch.shape == (12, 12, 3)  # 0.2 x 60
    assert patch.max() == 200


def test_clips_are_deterministic_from_the_seed():
    tails = {"a": textured_walk(12), "b": textured_walk(12, step=1)}
    first, again = make_clips(tails, seed=5), make_clips(tails, seed=5)
    assert [c.kind for c in first] == ["normal", *KINDS] * 2
    for one, two in zip(first, again, strict=True):
        np.testing.assert_array_equal(one.images, two.images)
    other = make_clips(tails, seed=6)
    assert any(not np.array_equal(a.images, b.images) for a, b in zip(first, other, strict=True))
    with pytest.raises(ValueError, match="unknown pseudo-anomaly"):
        make_clips(tails, kinds=("explosion",))


def test_kind_aucs_compare_each_kind_with_every_normal_frame():
    def clip(labels):
        return PreparedVideo("c", np.zeros((len(labels), 4, 4, 1), np.uint8),
                             np.zeros((len(labels) - 1, 4, 4, 2), np.float16), (4, 4),
                             np.array(labels))

    validation = ValidationSet([clip([0, 0, 0]), clip([1, 1, 1]), clip([0, 1, 1])],
                               ["normal", "speed", "foreign_object"])
    errors = [VideoErrors("c", np.arange(3)) for _ in range(3)]
    scores = [np.array([0.0, 1.0, 2.0]), np.array([5.0, 6.0, 7.0]), np.array([3.0, 0.5, 1.5])]
    aucs = kind_aucs(scores, errors, validation)
    assert aucs["speed"] == 1.0  # every speed frame above every normal one
    # foreign frames 0.5, 1.5 against normal 0, 1, 2, 3: (1 + 2) wins of 8
    assert aucs["foreign_object"] == pytest.approx(3 / 8)
    assert "dropped_object" not in aucs


def test_one_standard_error_rule_takes_the_simplest_setting_near_the_best():
    def setting(weight: float, window: int, auc: float):
        return ScoreConfig(formula="zscore", zscore_frame_weight=weight,
                           causal_window=window), {"pooled": auc}

    grid = [setting(0.3, 9, 0.951), setting(0.0, 9, 0.947), setting(0.0, 3, 0.944),
            setting(0.0, 1, 0.90), setting(1.0, 1, 0.950)]
    assert pick_setting(grid, 0.0, "best")[0].zscore_frame_weight == 0.3
    chosen, near = pick_setting(grid, 0.008, "one_se")
    assert (chosen.zscore_frame_weight, chosen.causal_window, near) == (0.0, 3, 4)
    chosen, near = pick_setting(grid, 0.002, "one_se")  # only the best two are near
    assert (chosen.zscore_frame_weight, chosen.causal_window, near) == (0.3, 9, 2)


def test_one_standard_error_rule_prefers_frame_wide_statistics_to_per_pixel_ones():
    location = ScoreConfig(formula="location", lambda_s=0.0), {"pooled": 0.95}
    thesis = ScoreConfig(formula="thesis", lambda_s=1.0), {"pooled": 0.93}
    assert pick_setting([location, thesis], 0.03, "one_se")[0].formula == "thesis"
    assert pick_setting([location, thesis], 0.01, "one_se")[0].formula == "location"


def test_location_formula_is_offered_only_where_asked():
    plain = ScoreConfig()  # choose.offer_location is off by default
    assert {o.formula for o in choice._formulas(plain, "comemory")} == {"thesis", "zscore"}
    assert not choice._needs_maps(plain, "comemory", choose=True)
    offered = {o.formula for o in choice._formulas(plain, "comemory", offer_location=True)}
    assert offered == {"thesis", "zscore", "location"}
    assert choice._needs_maps(plain, "comemory", choose=True, offer_location=True)
    assert not choice._needs_maps(plain, "comemory", choose=False, offer_location=True)
    assert choice._needs_maps(ScoreConfig(formula="location"), "comemory", choose=False)
    assert not choice._needs_maps(ScoreConfig(formula="location"), "mnad", choose=True)
    # a user who sets the formula keeps it among the candidates
    kept = {o.formula for o in choice._formulas(ScoreConfig(formula="location"), "comemory")}
    assert "location" in kept
    prior = ScoreConfig(formula="zscore", zscore_motion_weight=1.0)
    assert {o.formula for o in choice._formulas(prior, "comemory", True)} == {"zscore"}
    assert not choice._needs_maps(prior, "comemory", choose=True, offer_location=True)


def test_bootstrap_error_is_zero_when_every_source_separates_perfectly():
    def clip(labels):
        return PreparedVideo("c", np.zeros((len(labels), 4, 4, 1), np.uint8),
                             np.zeros((len(labels) - 1, 4, 4, 2), np.float16), (4, 4),
                             np.array(labels))

    videos = [clip([0, 0, 1, 1]) for _ in range(6)]
    validation = ValidationSet(videos, ["normal"] * 6, [f"v{i // 2}" for i in range(6)])
    errors = [VideoErrors("c", np.arange(4)) for _ in range(6)]
    perfect = [np.array([0.0, 0.1, 1.0, 1.1])] * 6
    assert bootstrap_error(perfect, errors, validation) == 0.0
    rng = np.random.default_rng(0)
    noisy = [rng.normal(size=4) + np.array([0, 0, 1, 1]) for _ in range(6)]
    error = bootstrap_error(noisy, errors, validation)
    assert 0.01 < error < 0.5
    assert bootstrap_error(noisy, errors, validation) == error  # deterministic


def test_training_ends_with_validation_but_few_frames_choose_nothing(trained_run):
    checkpoint, _, _ = trained_run
    state = load_checkpoint(checkpoint)
    report = state["validation"]
    assert report["frames"]["normal"] < choice.MIN_NORMAL_FRAMES
    assert "not chosen" in report["chosen_by"] and report["grid"][0]["causal_window"] == 1
    assert state["chosen_score"]["formula"] == "thesis"  # the preset's, kept
    assert state["chosen_score"] == state["config"]["score"]  # what was asked for


def test_validate_chooses_settings_from_its_grid(trained_run, tmp_path, monkeypatch):
    checkpoint, data, cache = trained_run
    monkeypatch.setattr(choice, "MIN_NORMAL_FRAMES", 10)  # the tiny scene holds out 16
    chosen_copy = tmp_path / "chosen" / "checkpoint.pt"
    chosen_copy.parent.mkdir()
    chosen_copy.write_bytes(checkpoint.read_bytes())
    assert main(["validate", "--checkpoint", str(chosen_copy), "--data", str(data),
                 "--cache-dir", str(cache), "--choose", "--set",
                 "score.offer_location=true"]) == 0
    checkpoint = chosen_copy
    state = load_checkpoint(checkpoint)
    report = state["validation"]
    assert set(report["auc"]) == {"raw", "causal", "centred"}
    assert set(report["auc"]["causal"]) == {"pooled", *KINDS}
    assert all(0.0 <= v <= 1.0 for v in report["auc"]["causal"].values())
    assert report["frames"]["normal"] >= 4 * 4  # four videos, a tenth of 48 frames each
    chosen, score = report["chosen"], state["chosen_score"]
    assert chosen["causal_window"] == score["causal_window"] in CAUSAL_WINDOWS
    assert {k: score[k] for k in chosen} == chosen  # the checkpoint keeps the choice ...
    asked = state["config"]
    assert asked["score"]["causal_window"] == 1  # ... beside what was asked for
    assert asked["choose"]["offer_location"] is True  # the --set, given by its old name
    running = config_from_checkpoint(state)
    assert running.score.causal_window == chosen["causal_window"]
    assert asked_config(state).score.causal_window == 1
    weight = chosen["lambda_s"] if chosen["formula"] != "zscore" else chosen[
        "zscore_frame_weight"]
    assert weight in LAMBDAS
    assert {r["formula"] for r in report["grid"]} == {"thesis", "zscore", "location"}
    assert len(state["calibration"]["pixel_statistics"]) == 4  # what location reads
    best = max(r["causal"]["pooled"] for r in report["grid"])
    spread = report["spread"]
    assert spread["rule"] == "one_se" and spread["best_pooled"] == pytest.approx(best)
    assert report["auc"]["causal"]["pooled"] >= best - spread["bootstrap_standard_error"] - 1e-9
    assert spread["settings_within_one_error"] >= 1
    written = json.loads((checkpoint.parent / "validation.json").read_text())
    assert written["chosen"] == chosen
    assert state["calibration"]["threshold"] is not None
    # `comemory validate` on a copy reproduces the same AUCs from the checkpoint alone
    copy = tmp_path / "checkpoint.pt"
    copy.write_bytes(checkpoint.read_bytes())
    assert main(["validate", "--checkpoint", str(copy), "--data", str(data),
                 "--cache-dir", str(cache)]) == 0
    again = json.loads((tmp_path / "validation.json").read_text())
    for smoothing in ("raw", "causal"):
        for kind, auc in report["auc"][smoothing].items():
            assert again["auc"][smoothing][kind] == pytest.approx(auc, abs=1e-6)


def test_motion_prior_is_kept_while_the_rest_is_chosen(trained_run, tmp_path, monkeypatch,
                                                       capsys):
    checkpoint, data, cache = trained_run
    monkeypatch.setattr(choice, "MIN_NORMAL_FRAMES", 10)
    copy = tmp_path / "checkpoint.pt"
    copy.write_bytes(checkpoint.read_bytes())
    command = ["validate", "--checkpoint", str(copy), "--data", str(data),
               "--cache-dir", str(cache)]
    assert main([*command, "--choose", "--set", "model.width=0.5"]) == 2  # trained already
    assert "score settings only" in capsys.readouterr().err
    assert main([*command, "--set", "score.zscore_motion_weight=1"]) == 2  # not choosing
    assert "add --choose" in capsys.readouterr().err
    assert main([*command, "--choose", "--set", "score.formula=zscore",
                 "--set", "score.zscore_motion_weight=1"]) == 0
    state = load_checkpoint(copy)
    grid = state["validation"]["grid"]
    assert {(r["formula"], r["zscore_motion_weight"]) for r in grid} == {("zscore", 1.0)}
    assert {r["zscore_frame_weight"] for r in grid} == set(LAMBDAS)  # the rest still chosen
    assert state["config"]["score"]["zscore_motion_weight"] == 1.0  # asked for
    assert state["chosen_score"]["zscore_motion_weight"] == 1.0  # and kept
    assert state["calibration"]["motion_mean"] > 0 and state["calibration"]["motion_std"] > 0


def test_validation_needs_held_out_frames(trained_run, tmp_path, capsys):
    checkpoint, data, cache = trained_run
    state = load_checkpoint(checkpoint)
    state["config"]["train"]["holdout_fraction"] = 0.0
    copy = tmp_path / "checkpoint.pt"
    torch.save(state, copy)
    assert main(["validate", "--checkpoint", str(copy), "--data", str(data),
                 "--cache-dir", str(cache)]) == 2
    assert "holdout_fraction" in capsys.readouterr().err


def test_validation_on_whole_held_out_videos(trained_run, tmp_path):
    checkpoint, data, cache = trained_run
    state = load_checkpoint(checkpoint)
    state["config"]["train"].update(holdout="videos", holdout_fraction=0.5)
    copy = tmp_path / "checkpoint.pt"
    torch.save(state, copy)
    assert main(["validate", "--checkpoint", str(copy), "--data", str(data),
                 "--cache-dir", str(cache)]) == 0
    report = json.loads((tmp_path / "validation.json").read_text())
    folders = sorted((data / "training" / "frames").iterdir())
    assert len(folders) == 4  # the second and fourth held out, every frame of them
    assert report["frames"]["normal"] == sum(len(list(folders[i].iterdir())) for i in (1, 3))


def test_detached_read_stops_gradients_through_the_addressing():
    torch.manual_seed(0)
    queries = torch.nn.functional.normalize(torch.randn(5, 8), dim=1).requires_grad_()
    attached = Memory(4, 8, read="attached").read(queries)
    attached.features.sum().backward()
    assert queries.grad.abs().sum() > 0  # decoder gradients reach the queries via the read
    detached = Memory(4, 8, read="detached").read(queries)
    assert not detached.features.requires_grad  # MNAD: the read carries no gradient back
    assert detached.compactness.requires_grad  # the memory losses still train the encoder


def test_mse_compactness_gradient_is_the_l2_gradient_times_two_distance_over_c():
    dim = 128
    grads = {}
    for kind in ("l2", "mse"):
        torch.manual_seed(0)  # the same items for both
        memory = Memory(3, dim, compactness=kind)
        torch.manual_seed(1)  # the same queries
        queries = torch.nn.functional.normalize(torch.randn(6, dim), dim=1).requires_grad_()
        memory.read(queries).compactness.backward()
        grads[kind] = queries.grad.clone()
        distance = memory.read(queries.detach()).distance
    # d/dq mean ||q - p|| = (q - p) / (K ||q - p||); d/dq mean (q - p)^2 = 2 (q - p) / (K C)
    ratio = grads["mse"].norm(dim=1) / grads["l2"].norm(dim=1)
    torch.testing.assert_close(ratio, 2 * distance / dim, rtol=1e-4, atol=1e-7)
    assert (ratio <= 4 / dim).all()  # unit vectors lie within 2: at least C/4 times smaller


def test_motion_decoder_without_skips_ignores_the_encoder_skips():
    torch.manual_seed(0)
    features = torch.randn(1, 16, 2, 2)
    skips = [torch.randn(1, 4, 16, 16), torch.randn(1, 8, 8, 8), torch.randn(1, 16, 4, 4)]
    changed = [s + 5.0 for s in skips]
    for kept in (0, 1, 3):
        decoder = Decoder(16, 2, width=1 / 16, skips=kept).eval()
        same = torch.allclose(decoder(features, skips), decoder(features, changed))
        assert same == (kept == 0)
    model = build_model(ModelConfig(image_size=32, channels=1, width=0.125, motion_skips=0))
    assert model(torch.zeros(2, 2, 1, 32, 32)).flow.shape == (2, 2, 32, 32)


def test_cosine_schedule_anneals_from_the_rate_to_zero():
    config = TrainConfig(lr=1e-3, lr_schedule="cosine")
    assert learning_rate(config, 0, 100) == pytest.approx(1e-3)
    assert learning_rate(config, 50, 100) == pytest.approx(5e-4)
    assert learning_rate(config, 100, 100) == pytest.approx(0.0, abs=1e-12)
    assert learning_rate(TrainConfig(lr=1e-3), 70, 100) == 1e-3
