"""Which training frames are held out (never trained on): their scores set the alert
threshold, and the validation set is made from them (``train.holdout``,
``train.holdout_fraction``)."""
from __future__ import annotations

from comemory.config import HOLDOUT_MODES, TrainConfig
from comemory.data.model_input import PreparedVideo
from comemory.errors import DataError


def split_holdout(videos: list[PreparedVideo], fraction: float, past_frames: int, *,
                  by: str, fold: tuple[int, int] | None = None
                  ) -> tuple[list[PreparedVideo], list[PreparedVideo]]:
    """(training part, held-out part) of the videos.

    ``by="tail"``: the last ``fraction`` of each video's frames are held out. A held-out
    part starts ``past_frames`` frames early so that it scores exactly the held-out frames;
    those first frames are inputs only. A video too short to give both parts is used whole
    for training. ``by="videos"``: ``fraction`` of the videos (at least one, evenly spread
    over the list) are held out whole, so no one seen in training appears in them.
    ``fold=(j, k)`` (cross-fitting, ``comemory calibrate``) overrides both: the videos
    whose index modulo k is j are held out whole.
    """
    training, held_out = [], []
    starts = holdout_starts([len(v.frames) for v in videos], fraction, past_frames, by=by,
                            fold=fold)
    for video, start in zip(videos, starts, strict=True):
        if start is None:
            training.append(video)
            continue
        if start > 0:
            cut = start + past_frames
            training.append(video.part(0, cut, video.name))
        held_out.append(video.part(start, len(video.frames), f"{video.name} (held out)"))
    return training, held_out



def holdout_starts(counts: list[int], fraction: float, past_frames: int, *,
                   by: str, fold: tuple[int, int] | None = None) -> list[int | None]:
    """For videos of ``counts`` frames, where each one's held-out part starts (its
    ``past_frames`` input frames included): 0 for a video held out whole, None for one
    not held out. See ``split_holdout``."""
    if fold is not None:
        return fold_starts(len(counts), *fold)
    if by not in HOLDOUT_MODES:
        raise DataError(f"train.holdout must be one of {HOLDOUT_MODES}, got {by!r}")
    if not 0.0 <= fraction < 1.0:
        raise DataError(f"train.holdout_fraction must be in [0, 1), got {fraction}")
    if by == "tail":
        return [holdout_start(count, fraction, past_frames) for count in counts]
    if fraction == 0.0:
        return [None] * len(counts)
    if len(counts) < 2:
        raise DataError(f"train.holdout videos needs at least 2 training videos, found "
                        f"{len(counts)}: use train.holdout tail")
    held = min(len(counts) - 1, max(1, round(fraction * len(counts))))
    chosen = {int((i + 0.5) * len(counts) / held) for i in range(held)}
    return [0 if index in chosen else None for index in range(len(counts))]


def holdout_start(count: int, fraction: float, past_frames: int) -> int | None:
    """The first frame of a ``count``-frame video's held-out tail (its ``past_frames``
    input frames included), or None where the video is too short to give both parts
    (``fraction`` checked by ``holdout_starts``)."""
    held = round(fraction * count)
    cut = count - held
    if held < 1 or cut < past_frames + 1:
        return None
    return cut - past_frames


def fold_starts(count: int, fold: int, folds: int) -> list[int | None]:
    """Cross-fitting's split of ``count`` videos: those whose index modulo ``folds`` is
    ``fold`` are held out whole (0), the others trained on (None)."""
    if not 0 <= fold < folds or folds < 2:
        raise DataError(f"fold {fold} of {folds}: needs 2 or more folds and 0 <= fold < folds")
    if count < folds:
        raise DataError(f"{folds} folds need at least {folds} training videos, found {count}")
    return [0 if index % folds == fold else None for index in range(count)]


def holdout_of(train: TrainConfig) -> dict:
    """``split_holdout``'s and ``holdout_starts``'s keyword arguments for a run's
    train settings (train.holdout, or the cross-fitting fold train.fold of train.folds)."""
    return {"by": train.holdout, "fold": (train.fold, train.folds) if train.folds else None}
