"""Pseudo-anomalies made from held-out normal training frames: a labelled validation set
that needs no test labels.

The held-out frames of each training video (its tail, or the whole video where
``train.holdout`` is ``videos``; never trained on) are decoded at their own resolution
and turned into clips, each then run through the whole pipeline (model grid, optical
flow) like any video:

  normal          the tail as it is: every frame labelled 0.
  speed           the tail with a stride of ``SPEED_STRIDE`` frames: everything moves that
                  many times faster (runners instead of walkers). Every frame 1.
  foreign_object  a patch cut from another video's tail where it moves most (usually a
                  person), pasted from a third of the way in (fading in over its rim, so
                  no hard edge gives it away) and moved across the frames in a random
                  direction at a cyclist's pace, bouncing off the edges.
  dropped_object  such a patch appearing from a third of the way in and staying still
                  (a bag left behind): an appearance change, little motion after it lands.

Frames before an object appears are labelled 0. ``Clip.boxes`` says where each pasted
object lies, (top, left, height, width) in the frame's pixels. Clips depend only on the
frames and the seed.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

KINDS = ("speed", "foreign_object", "dropped_object")
# Subtle enough that no setting scores 1.0 on them: kinds every setting separates
# perfectly cannot rank one setting above another (docs/benchmarks.md, "Decisions").
SPEED_STRIDE = 2
OBJECT_SIDE = 0.2  # the pasted square's side, as a share of the frame's shorter side
OBJECT_SPEED = 0.01  # per frame, as a share of the frame's longer side: a cyclist's pace
ONSET = 1 / 3  # objects appear this far into the clip
# The pasted square fades in over this share of its side from each edge: a hard-edged
# square is seen by the frame term at its edges, not as an object, and validation then
# rewards the weight that sees edges (docs/benchmarks.md, "Decisions").
FEATHER = 0.25

Box = tuple[int, int, int, int]


@dataclass
class Clip:
    """images: uint8 (T, H, W, 3) BGR; labels: int64 (T,); boxes: the pasted object's box
    in each frame (None where there is none); source: the training video's name."""

    name: str
    kind: str
    images: np.ndarray
    labels: np.ndarray
    boxes: list[Box | None] = field(default_factory=list)
    source: str = ""  # the training video it was made from


def make_clips(tails: dict[str, np.ndarray], seed: int = 0,
               kinds: tuple[str, ...] = KINDS) -> list[Clip]:
    """A normal clip and one clip of each kind from every tail ({video name: uint8 BGR
    (T, H, W, 3)}); objects come from the next video's tail (the same one if alone)."""
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown pseudo-anomaly kind(s) {sorted(unknown)}; choose from {KINDS}")
    rng = np.random.default_rng(seed)
    names = list(tails)
    clips = []
    for index, name in enumerate(names):
        tail = tails[name]
        donor = tails[names[(index + 1) % len(names)]]
        made = [Clip(f"{name} normal", "normal", tail, np.zeros(len(tail), np.int64),
                     [None] * len(tail))]
        for kind in kinds:
            if kind == "speed":
                made.append(speed_clip(name, tail))
            else:
                patch = moving_patch(donor, rng)
                made.append(object_clip(name, tail, patch, kind == "foreign_object", rng))
        for clip in made:
            clip.source = name
        clips += made
    return clips


def speed_clip(name: str, tail: np.ndarray, stride: int = SPEED_STRIDE) -> Clip:
    """Every ``stride``-th frame: motion ``stride`` times faster; all frames labelled 1."""
    images = tail[::stride]
    return Clip(f"{name} speed x{stride}", "speed", images, np.ones(len(images), np.int64),
                [None] * len(images))


def moving_patch(frames: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A square cut from a random frame of ``frames`` where it differs most from the frame
    before (where something moved in): uint8 (side, side, 3)."""
    height, width = frames.shape[1:3]
    side = max(4, round(OBJECT_SIDE * min(height, width)))
    t = int(rng.integers(0, len(frames) - 1))
    change = np.abs(frames[t + 1].astype(np.int16) - frames[t].astype(np.int16)).sum(-1)
    # the change summed over every side x side window, from an integral image
    integral = np.pad(change.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    windows = (integral[side:, side:] - integral[:-side, side:] - integral[side:, :-side]
               + integral[:-side, :-side])
    top, left = np.unravel_index(int(np.argmax(windows)), windows.shape)
    return frames[t + 1, top:top + side, left:left + side].copy()


def object_clip(name: str, tail: np.ndarray, patch: np.ndarray, moving: bool,
                rng: np.random.Generator) -> Clip:
    """``patch`` pasted onto ``tail`` from ``ONSET`` on: moving fast across the frame
    (``moving``) or still where it lands. Labels 1 from its first frame."""
    count, height, width = tail.shape[:3]
    side = patch.shape[0]
    onset = max(1, round(ONSET * count))
    path = _object_path(count - onset, height, width, side, moving, rng)
    images, labels, boxes = tail.copy(), np.zeros(count, np.int64), [None] * count
    alpha = feathered_mask(side)[..., None]
    for t, (top, left) in enumerate(path, start=onset):
        under = images[t, top:top + side, left:left + side].astype(np.float32)
        images[t, top:top + side, left:left + side] = np.rint(
            alpha * patch + (1 - alpha) * under).astype(np.uint8)
        labels[t], boxes[t] = 1, (top, left, side, side)
    kind = "foreign_object" if moving else "dropped_object"
    return Clip(f"{name} {kind}", kind, images, labels, boxes)


def feathered_mask(side: int, feather: float = FEATHER) -> np.ndarray:
    """(side, side) float32 weights of a pasted square: 1 inside, falling linearly to near
    0 over ``feather`` x side at each edge, so no hard edge marks where it was pasted."""
    ramp_width = max(1.0, feather * side)
    distance = np.minimum(np.arange(side), np.arange(side)[::-1]) + 0.5  # to the nearest edge
    ramp = np.clip(distance / ramp_width, 0, 1).astype(np.float32)
    return np.minimum.outer(ramp, ramp)


def _object_path(steps: int, height: int, width: int, side: int, moving: bool,
                 rng: np.random.Generator) -> list[tuple[int, int]]:
    """(top, left) of the object in each of ``steps`` frames: still, or moving at
    ``OBJECT_SPEED`` in a random direction and bouncing off the frame's edges."""
    span = np.array([height - side, width - side], dtype=np.float64)
    position = rng.uniform(0, 1, 2) * span
    if not moving:
        return [(int(position[0]), int(position[1]))] * steps
    angle = rng.uniform(0, 2 * np.pi)
    velocity = OBJECT_SPEED * max(height, width) * np.array([np.sin(angle), np.cos(angle)])
    path = []
    for _ in range(steps):
        path.append((int(round(position[0])), int(round(position[1]))))
        position = position + velocity
        for axis in (0, 1):  # reflect off the edges
            if position[axis] < 0 or position[axis] > span[axis]:
                velocity[axis] = -velocity[axis]
                position[axis] = np.clip(position[axis], 0, span[axis])
    return path
