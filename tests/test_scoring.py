"""Score functions (eq. 3.18-3.20) and metrics on small inputs with known answers."""
import math

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from comemory.config import ScoreConfig
from comemory.data.model_input import PreparedVideo
from comemory.evaluate.metrics import (
    PixelAUROC,
    equal_error_rate,
    frame_metrics,
    normalise,
)
from comemory.model import build_model
from comemory.scoring import (
    Calibration,
    CausalMean,
    ErrorStatistics,
    MNADStatistics,
    VideoErrors,
    calibrate,
    causal_mean,
    centred_gaussian,
    flow_floor_errors,
    frame_errors,
    mnad_scores_video_minmax,
    score_statistics,
    scorer_for,
    thesis_score,
    video_errors,
    zscore_score,
)
from comemory.scoring.calibration import PIXEL_SPREAD_FLOOR, pixel_statistics
from comemory.scoring.errors import centred_patch_means, patch_means
from comemory.scoring.offline import point_score
from tests.conftest import small_config


def test_patch_means():
    error = torch.arange(16.0).reshape(1, 1, 4, 4)
    means = patch_means(error, patch_size=2, stride=2)
    torch.testing.assert_close(means, torch.tensor([[[2.5, 4.5], [10.5, 12.5]]]))
    assert patch_means(error, patch_size=2, stride=1).shape == (1, 3, 3)


def test_frame_error_is_taken_at_the_patch_of_largest_flow_error():
    flow_true = torch.zeros(1, 2, 4, 4)
    flow_pred = torch.zeros(1, 2, 4, 4)
    flow_pred[0, 0, :2, :2] = 2.0  # top-left patch: u off by 2 -> squared error 4
    flow_pred[0, 1, :2, :2] = 1.0  # and v off by 1 -> 4 + 1 = 5 per pixel
    frame_true = torch.zeros(1, 1, 4, 4)
    frame_pred = torch.zeros(1, 1, 4, 4)
    frame_pred[0, 0, 2:, 2:] = 1.0  # the frame's worst patch is elsewhere...
    frame_pred[0, 0, 0, 0] = 0.4  # ...and the flow's patch holds one pixel of error 0.16
    errors = frame_errors(flow_pred, flow_true, frame_pred, frame_true,
                          ScoreConfig(patch_size=2, patch_stride=2))
    assert errors.flow_error.item() == pytest.approx(5.0)
    assert errors.frame_error.item() == pytest.approx(0.16 / 4)
    assert errors.flow_map.shape == errors.frame_map.shape == (1, 4, 4)  # one value per pixel
    assert errors.flow_map[0, 0, 0].item() == pytest.approx(5.0)  # inside the erring patch


def test_colour_and_grey_frames_score_alike():
    grey_pred, grey_true = torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 8)
    flows = torch.zeros(1, 2, 8, 8), torch.zeros(1, 2, 8, 8)
    config = ScoreConfig(patch_size=4, patch_stride=4)
    grey = frame_errors(*flows, grey_pred, grey_true, config)
    colour = frame_errors(*flows, grey_pred.repeat(1, 3, 1, 1), grey_true.repeat(1, 3, 1, 1),
                          config)
    torch.testing.assert_close(grey.frame_error, colour.frame_error)
    torch.testing.assert_close(grey.psnr, colour.psnr)


def test_psnr_takes_frames_in_unit_range():
    pred = torch.full((1, 1, 4, 4), 0.2)  # error 0.2 in [-1, 1] = 0.1 in [0, 1]
    errors = frame_errors(torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 4, 4), pred,
                          torch.zeros(1, 1, 4, 4), ScoreConfig(patch_size=2))
    assert errors.psnr.item() == pytest.approx(20.0, abs=1e-4)  # 10 log10(1 / 0.01)


def test_calibration_weights_are_inverse_training_means():
    calibration = calibrate(np.array([1.0, 3.0]), np.array([0.5, 0.5]))
    assert calibration.flow_weight == pytest.approx(0.5)
    assert calibration.frame_weight == pytest.approx(2.0)
    with pytest.raises(ValueError, match="all zero"):
        calibrate(np.zeros(3), np.ones(3))


def test_abnormality_score_equation():
    statistics = ErrorStatistics(flow_weight=2.0, frame_weight=0.5)
    score = thesis_score(np.array([0.5, 1.5]), np.array([4.0, 0.0]), statistics, lambda_s=3.0)
    np.testing.assert_allclose(score, [math.log(1.0) + 3 * 2.0, math.log(3.0)])
    assert np.isfinite(thesis_score(np.array([0.0]), np.array([0.0]), statistics, 1.0)).all()


def test_zscore_formula_is_hf2vad_weighted_sum_without_log():
    statistics = calibrate(np.array([1.0, 3.0]), np.array([2.0, 6.0]))  # means 2, 4; stds 1, 2
    assert (statistics.flow_std, statistics.frame_std) == (1.0, 2.0)
    score = zscore_score(np.array([2.0, 5.0]), np.array([8.0, 4.0]), statistics, 0.1)
    calibration = Calibration(statistics)
    np.testing.assert_allclose(score, [0.0 + 0.1 * 2.0, 3.0 + 0.0])
    errors = VideoErrors("v", np.arange(2), flow_error=np.array([2.0, 5.0]),
                         frame_error=np.array([8.0, 4.0]))
    scorer = scorer_for("comemory", ScoreConfig(formula="zscore", zscore_frame_weight=0.1))
    np.testing.assert_allclose(scorer.frame_scores(errors, calibration), score)
    thesis = scorer_for("comemory", ScoreConfig(formula="thesis", lambda_s=0.0))
    np.testing.assert_allclose(thesis.frame_scores(errors, calibration),
                               np.log(np.array([2.0, 5.0]) / 2.0))


def test_motion_prior_adds_the_z_scored_most_moving_patch():
    # means 2, 4, 1; stds 1, 2, 0.5
    statistics = calibrate(np.array([1.0, 3.0]), np.array([2.0, 6.0]), np.array([0.5, 1.5]))
    assert (statistics.motion_mean, statistics.motion_std) == (1.0, 0.5)
    calibration = Calibration(statistics)
    errors = VideoErrors("v", np.arange(2), flow_error=np.array([2.0, 5.0]),
                         frame_error=np.array([8.0, 4.0]), motion=np.array([1.0, 3.0]),
                         flow_maps=np.ones((2, 2, 2), np.float16),
                         frame_maps=np.ones((2, 2, 2), np.float16))
    plain = ScoreConfig(formula="zscore", zscore_frame_weight=0.1)
    prior = ScoreConfig(formula="zscore", zscore_frame_weight=0.1, zscore_motion_weight=2.0)
    without = scorer_for("comemory", plain).frame_scores(errors, calibration)
    np.testing.assert_allclose(scorer_for("comemory", prior).frame_scores(errors, calibration),
                               without + 2.0 * np.array([0.0, 4.0]))
    # the maps show where the network erred: the frame-level prior stays out of them
    np.testing.assert_allclose(scorer_for("comemory", prior).pixel_maps(errors, calibration),
                               scorer_for("comemory", plain).pixel_maps(errors, calibration))
    old = Calibration(calibrate(np.array([1.0, 3.0]), np.array([2.0, 6.0])))  # without motion
    with pytest.raises(ValueError, match="validate --choose"):
        scorer_for("comemory", prior).frame_scores(errors, old)


def test_motion_part_is_the_most_moving_patch_of_the_measured_flow():
    flow_true = torch.zeros(1, 2, 4, 4)
    flow_true[0, :, 2:, :2] = torch.tensor([3.0, 4.0]).view(2, 1, 1)  # 5 px in one patch
    flow_true[0, 0, 0, 0] = 1.0  # a little elsewhere
    errors = frame_errors(flow_true.clone(), flow_true, torch.zeros(1, 1, 4, 4),
                          torch.zeros(1, 1, 4, 4), ScoreConfig(patch_size=2, patch_stride=2))
    assert errors.motion.item() == pytest.approx(5.0)  # whatever the prediction's error
    assert errors.flow_error.item() == 0.0


def test_causal_smoothing_is_a_trailing_mean():
    scores = np.array([3.0, 1.0, 2.0, 6.0])
    np.testing.assert_allclose(causal_mean(scores, 2), [3.0, 2.0, 1.5, 4.0])
    np.testing.assert_allclose(causal_mean(scores, 1), scores)
    live = CausalMean(2)
    np.testing.assert_allclose([live.push(s) for s in scores], causal_mean(scores, 2))
    live.reset()
    assert live.push(10.0) == 10.0  # a new video forgets the old one


def test_causal_smoothing_never_reads_a_future_frame():
    rng = np.random.default_rng(3)
    scores = rng.normal(size=40)
    changed = scores.copy()
    changed[25:] += rng.normal(size=15) * 100  # rewrite the future from frame 25 on
    for window in (1, 3, 9):
        np.testing.assert_array_equal(causal_mean(scores, window)[:25],
                                      causal_mean(changed, window)[:25])
    centred = centred_gaussian(scores, 3.0)  # the centred filter does read it
    assert not np.allclose(centred[:25], centred_gaussian(changed, 3.0)[:25])


def test_centred_gaussian_spreads_a_spike_both_ways_and_keeps_its_mass():
    spike = np.zeros(21)
    spike[10] = 1.0
    smoothed = centred_gaussian(spike, 2.0)
    assert smoothed[8] == pytest.approx(smoothed[12]) and smoothed[8] > 0
    assert smoothed.sum() == pytest.approx(1.0)
    np.testing.assert_array_equal(centred_gaussian(spike, 0.0), spike)


def test_normalisations():
    scores = np.array([1.0, 2.0, 4.0])
    np.testing.assert_allclose(normalise(scores, "video_max"), [0.25, 0.5, 1.0])
    np.testing.assert_allclose(normalise(scores, "video_minmax"), [0.0, 1 / 3, 1.0])
    np.testing.assert_allclose(normalise(scores, "none"), scores)
    negative = np.array([-3.0, -1.0, -2.0])  # eq. 3.18 can be negative: order must survive
    assert list(np.argsort(normalise(negative, "video_max"))) == list(np.argsort(negative))
    with pytest.raises(ValueError, match="unknown normalisation"):
        normalise(scores, "zscore")


def test_metrics_agree_with_scikit_learn():
    rng = np.random.default_rng(0)
    labels = [np.array([0, 0, 1, 1, 1]), np.array([0, 1, 0, 1]), np.array([0, 0, 0])]
    scores = [rng.random(len(truth)) + truth * 0.3 for truth in labels]
    metrics = frame_metrics(scores, labels)
    assert metrics["micro_auc"] == pytest.approx(
        roc_auc_score(np.concatenate(labels), np.concatenate(scores)))
    # the one-class third video has no AUC of its own and stays out of the macro mean
    macro = np.mean([roc_auc_score(labels[i], scores[i]) for i in (0, 1)])
    assert metrics["macro_auc"] == pytest.approx(macro)
    assert metrics["macro_videos"] == 2


def test_equal_error_rate_known_cases():
    labels = np.array([0, 0, 1, 1])
    assert equal_error_rate(labels, np.array([0.1, 0.2, 0.8, 0.9])) == pytest.approx(0.0)
    # threshold 0.6 flags one of each class: FPR = FNR = 0.5
    assert equal_error_rate(labels, np.array([0.1, 0.6, 0.4, 0.9])) == pytest.approx(0.5)
    assert equal_error_rate(labels, np.array([0.9, 0.8, 0.2, 0.1])) == pytest.approx(1.0)


def test_metrics_refuse_one_class_labels():
    with pytest.raises(ValueError, match="one class"):
        frame_metrics([np.array([0.1, 0.2])], [np.array([0, 0])])


def test_centred_patch_means_line_up_with_the_frame():
    error = torch.zeros(1, 1, 6, 6)
    error[0, 0, 2, 3] = 9.0
    means = centred_patch_means(error, 3)
    assert means.shape == (1, 6, 6)
    assert means[0, 2, 3].item() == pytest.approx(1.0)  # 9 spread over the 3x3 patch around it
    assert means[0, 0, 0].item() == 0.0 and means[0, 5, 5].item() == 0.0
    assert centred_patch_means(error, 4).shape == (1, 6, 6)  # even patches too


def test_pixel_auroc_matches_exact_auroc():
    rng = np.random.default_rng(1)
    masks = rng.random((5, 20, 30)) < 0.2
    scores = rng.normal(size=masks.shape) + masks * 0.8
    accumulator = PixelAUROC(float(scores.min()), float(scores.max()))
    for frame_scores, frame_masks in zip(scores, masks):  # added frame by frame
        accumulator.add(frame_scores, frame_masks)
    exact = roc_auc_score(masks.ravel(), scores.ravel())
    assert 0.6 < exact < 0.9
    assert accumulator.value() == pytest.approx(exact, abs=1e-4)
    ties = PixelAUROC(0.0, 1.0)
    ties.add(np.full(4, 0.5), np.array([True, False, True, False]))
    assert ties.value() == pytest.approx(0.5)  # tied scores count half, as the exact AUROC
    empty = PixelAUROC(0.0, 1.0)
    empty.add(np.zeros(3), np.zeros(3, bool))
    assert empty.value() is None


def test_flow_floor_scores_the_most_moving_patch_of_the_motion_into_each_frame():
    flows = np.zeros((4, 8, 8, 2), np.float16)  # 5 frames, flows[t] = frame t -> t+1
    flows[2, :2, :2] = (3.0, 4.0)  # a patch moving 5 px into frame 3
    video = PreparedVideo("v", np.zeros((5, 8, 8, 1), np.uint8), flows, (8, 8))
    (errors,) = flow_floor_errors([video], ScoreConfig(patch_size=2, patch_stride=2),
                                  keep_maps=True)
    assert errors.frames.tolist() == [2, 3, 4]  # the frames a two-frame model scores
    np.testing.assert_allclose(errors.flow_error, [0.0, 5.0, 0.0])
    assert errors.flow_maps.shape == (3, 8, 8)


def test_mnad_score_rises_with_low_psnr_and_far_features():
    errors = VideoErrors("v", np.arange(3), psnr=np.array([30.0, 20.0, 30.0]),
                         distance=np.array([0.1, 0.1, 0.5]))
    calibration = Calibration(MNADStatistics(psnr_mean=30.0, psnr_std=2.0, distance_mean=0.1,
                                             distance_std=0.1))
    scores = scorer_for("mnad", ScoreConfig()).frame_scores(errors, calibration)
    np.testing.assert_allclose(scores, [0.0, 0.6 * 5.0, 0.4 * 4.0])
    with pytest.raises(ValueError, match="reads ErrorStatistics, the calibration holds MNAD"):
        scorer_for("comemory", ScoreConfig()).frame_scores(errors, calibration)
    np.testing.assert_allclose(mnad_scores_video_minmax(errors), [0.0, 0.6, 0.4])


def test_calibration_round_trips_with_its_extra_statistics():
    calibration = Calibration(ErrorStatistics(2.0, 0.5), threshold=3.0,
                              extra={"score_mean": 1.5})
    again = Calibration.from_dict(calibration.to_dict())
    assert again == calibration and calibration.to_dict()["score_mean"] == 1.5
    mnad = Calibration(MNADStatistics(30.0, 2.0, 0.1, 0.1))
    assert Calibration.from_dict(mnad.to_dict()) == mnad
    assert Calibration.from_dict(Calibration().to_dict()) == Calibration()  # the floor's
    # the flat record checkpoints have always held: each statistic by name, None if unused
    old = {"flow_weight": None, "frame_weight": None, "flow_mean": None, "flow_std": None,
           "frame_mean": None, "frame_std": None, "psnr_mean": 30.0, "psnr_std": 2.0,
           "distance_mean": 0.1, "distance_std": 0.1, "threshold": 1.2,
           "false_alarm_rate": 0.01, "pixel_statistics": None, "frames": 300}
    loaded = Calibration.from_dict(old)
    assert loaded.statistics == MNADStatistics(30.0, 2.0, 0.1, 0.1)
    assert (loaded.threshold, loaded.extra) == (1.2, {"frames": 300})
    assert set(mnad.to_dict()) >= set(old) - {"frames"}


def location_errors(flow_logs: list, frame_logs: list) -> VideoErrors:
    """VideoErrors of 1 x 2 maps whose patch errors are exp(the given logs), a row a frame."""
    flow = np.exp(np.array(flow_logs, dtype=np.float64)).reshape(-1, 1, 2)
    frame = np.exp(np.array(frame_logs, dtype=np.float64)).reshape(-1, 1, 2)
    return VideoErrors("v", np.arange(len(flow)), flow_error=flow.max((1, 2)),
                       frame_error=frame.max((1, 2)), flow_maps=flow.astype(np.float16),
                       frame_maps=frame.astype(np.float16))


def test_pixel_statistics_are_each_pixels_log_mean_and_spread():
    # pixel 0: logs 1 and 3 (mean 2, spread 1); pixel 1: logs -1 twice (spread 0 -> floor)
    training = [location_errors([[1.0, -1.0]], [[0.0, 0.0]]),
                location_errors([[3.0, -1.0]], [[0.0, 2.0]])]
    statistics = pixel_statistics(training)
    assert statistics.shape == (4, 1, 2)
    np.testing.assert_allclose(statistics[0], [[2.0, -1.0]], atol=2e-3)  # float16 maps
    np.testing.assert_allclose(statistics[1], [[1.0, PIXEL_SPREAD_FLOOR]], atol=2e-3)
    np.testing.assert_allclose(statistics[2], [[0.0, 1.0]], atol=2e-3)
    np.testing.assert_allclose(statistics[3], [[PIXEL_SPREAD_FLOOR, 1.0]], atol=2e-3)


def test_location_formula_weighs_an_error_against_what_its_pixel_usually_shows():
    statistics = np.array([[[2.0, -1.0]], [[1.0, 0.1]], [[0.0, 0.0]], [[1.0, 2.0]]],
                          dtype=np.float32)
    calibration = Calibration(ErrorStatistics(1.0, 1.0, pixel_statistics=statistics))
    # pixel 0 errs most (log 3 against log 0) but that is its usual; pixel 1 never errs so
    errors = location_errors([[3.0, 0.0]], [[0.0, 4.0]])
    flow_only = scorer_for("comemory", ScoreConfig(formula="location", lambda_s=0.0))
    np.testing.assert_allclose(flow_only.pixel_maps(errors, calibration), [[[1.0, 10.0]]],
                               atol=0.02)
    np.testing.assert_allclose(flow_only.frame_scores(errors, calibration), [10.0], atol=0.02)
    # lambda_S adds the frame term's z: pixel 1's frame log error 4 is (4 - 0) / 2 = 2
    both = scorer_for("comemory", ScoreConfig(formula="location", lambda_s=0.5))
    np.testing.assert_allclose(both.frame_scores(errors, calibration), [11.0], atol=0.02)
    # the frame-wide thesis score takes the patch of the largest raw flow error: pixel 0
    thesis = scorer_for("comemory", ScoreConfig(formula="thesis", lambda_s=0.0))
    np.testing.assert_allclose(thesis.frame_scores(errors, calibration), [3.0], atol=0.01)
    with pytest.raises(ValueError, match="validate --choose"):
        flow_only.frame_scores(errors, Calibration(ErrorStatistics(1.0, 1.0)))
    with pytest.raises(ValueError, match="cannot be aligned"):
        flow_only.aligned_scores(errors, calibration)


def test_per_pixel_statistics_survive_a_checkpoint(tmp_path):
    training = [location_errors([[1.0, -1.0], [3.0, -1.0]], [[0.0, 0.0], [0.0, 2.0]])]
    calibration = score_statistics(training, "comemory")
    assert calibration.statistics.pixel_statistics is not None
    torch.save({"calibration": calibration.to_dict()}, tmp_path / "state.pt")
    loaded = torch.load(tmp_path / "state.pt", weights_only=True)  # as checkpoints are read
    again = Calibration.from_dict(loaded["calibration"])
    np.testing.assert_array_equal(again.statistics.pixel_statistics,
                                  calibration.statistics.pixel_statistics)
    assert again.statistics.flow_weight == calibration.statistics.flow_weight
    # without maps, no per-pixel statistics: the frame-wide formulas need none
    plain = [VideoErrors("v", np.arange(2), flow_error=np.ones(2), frame_error=np.ones(2))]
    assert score_statistics(plain, "comemory").statistics.pixel_statistics is None


def test_aligned_scores_credit_the_flow_term_to_the_frame_it_describes():
    calibration = Calibration(ErrorStatistics(1.0, 1.0))
    errors = VideoErrors("v", np.arange(2, 5), flow_error=np.exp([1.0, 2.0, 3.0]),
                         frame_error=np.array([10.0, 20.0, 30.0]))
    scorer = scorer_for("comemory", ScoreConfig(lambda_s=1.0))
    np.testing.assert_allclose(scorer.frame_scores(errors, calibration), [11.0, 22.0, 33.0])
    # frame 2 gets the flow term of the sample predicting frame 3 (motion 1 -> 2)
    np.testing.assert_allclose(scorer.aligned_scores(errors, calibration), [12.0, 23.0, 33.0])


def test_mnad_point_score_weights_large_errors_more():
    target = torch.zeros(1, 1, 4, 4)
    assert point_score(target, target).item() == 0.0
    # 0.2 off everywhere in [-1, 1] = 0.1 in [0, 1]: squared 0.01, equal weights
    assert point_score(target + 0.2, target).item() == pytest.approx(0.01)
    one_bad = target.clone()
    one_bad[..., 0, 0] = 0.2  # one pixel off: its weight is the only non-zero one
    assert point_score(one_bad, target).item() == pytest.approx(0.01)


def test_test_time_update_changes_later_scores_and_restores_the_memory():
    config = small_config("model.architecture=mnad")
    torch.manual_seed(0)
    model = build_model(config.model)
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (12, 64, 64, 1)).astype(np.uint8)
    video = PreparedVideo("v", frames, np.zeros((11, 64, 64, 2), np.float16), (64, 64))
    items = model.head.memory.items.clone()

    def distance(threshold: float) -> np.ndarray:  # of each query to its nearest item
        score = ScoreConfig(patch_size=8, test_time_update=threshold)
        return video_errors(model, [video], score)[0].distance

    frozen, always, never = distance(0.0), distance(1e9), distance(1e-12)
    assert torch.equal(model.head.memory.items, items)  # restored after each evaluation
    np.testing.assert_allclose(never, frozen, rtol=1e-5)  # nothing below the threshold
    np.testing.assert_allclose(always[0], frozen[0], rtol=1e-5)  # before the first update
    assert (always[1:] < frozen[1:]).all()  # the items moved towards the frames' queries
