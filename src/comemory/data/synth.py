"""Synthetic surveillance scenes in the frame-folder layout, deterministic by seed.

A static textured walkway seen from above; small "pedestrians" walk left to right at
normal speeds. Each test video also holds one anomaly, by turns:
  fast     an object moving 5x faster than any pedestrian (a bike, a cart)
  large    an object 3x larger than a pedestrian, at walking speed (a vehicle)
  against  a pedestrian walking right to left, against the flow
Labels mark the frames where any pixel of the anomaly is in view; pixel masks are
written beside the frames as in ``../shared/data/ped2``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from comemory.progress import progress

ANOMALY_KINDS = ("fast", "large", "against")
SUBPIXEL_BITS = 4  # cv2 drawing with 1/16 pixel positions, so slow motion is smooth


@dataclass
class Walker:
    x: float
    y: float
    vx: float
    vy: float
    size: float  # body half-height in pixels
    shade: int
    anomalous: bool = False


@dataclass
class SynthSpec:
    seed: int = 0
    train_videos: int = 4
    test_videos: int = 6
    frames: int = 80
    height: int = 120
    width: int = 160
    walkers: int = 4  # pedestrians in view on average


def synthesize(out: str | Path, spec: SynthSpec | None = None) -> dict[str, int]:
    """Write ``out/{training,testing}/frames``, ``testing/masks`` and
    ``frame_labels_synth.npy``; returns counts for a summary."""
    spec = spec or SynthSpec()
    out = Path(out)
    rng = np.random.default_rng(spec.seed)
    background = _background(rng, spec.height, spec.width)
    labels: list[np.ndarray] = []
    jobs = [("training", i, None) for i in range(spec.train_videos)]
    jobs += [("testing", i, ANOMALY_KINDS[i % len(ANOMALY_KINDS)]) for i in range(spec.test_videos)]
    for split, index, kind in progress(jobs, desc="synthesising", unit="video"):
        frames, masks = _render_video(rng, background, spec, kind)
        name = f"{index + 1:02d}"
        _write_images(out / split / "frames" / name, frames)
        if kind is not None:
            _write_images(out / split / "masks" / name, masks)
            labels.append(masks.reshape(len(masks), -1).any(axis=1).astype(np.int64))
    all_labels = np.concatenate(labels)
    np.save(out / "frame_labels_synth.npy", all_labels)
    return {"training_videos": spec.train_videos, "testing_videos": spec.test_videos,
            "frames_per_video": spec.frames, "anomalous_test_frames": int(all_labels.sum()),
            "test_frames": int(all_labels.size)}


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Smooth blotches + paving lines, grey levels roughly 90-170."""
    noise = cv2.GaussianBlur(rng.normal(0, 1, (height, width)).astype(np.float32), (0, 0), 4)
    field = 130 + 25 * noise / (noise.std() + 1e-6)
    for y in range(8, height, 24):
        field[y:y + 1, :] -= 25
    for x in range(12, width, 40):
        field[:, x:x + 1] -= 15
    return np.clip(field, 0, 255).astype(np.float32)


def _spawn(rng: np.random.Generator, spec: SynthSpec, kind: str | None = None) -> Walker:
    speed = rng.uniform(0.8, 1.6)
    size = rng.uniform(6.0, 8.0)
    shade = int(rng.choice([rng.integers(25, 65), rng.integers(195, 235)]))
    if kind == "fast":
        speed *= 5.0
    elif kind == "large":
        size *= 3.0
    direction = -1.0 if kind == "against" else 1.0
    margin = 0.5 * size  # just out of view: the body's half-width is 0.45 * size
    x = spec.width + margin if direction < 0 else -margin
    y = rng.uniform(0.15, 0.85) * spec.height
    return Walker(x, y, direction * speed, rng.uniform(-0.15, 0.15), size, shade, kind is not None)


def _render_video(rng: np.random.Generator, background: np.ndarray, spec: SynthSpec,
                  kind: str | None) -> tuple[np.ndarray, np.ndarray]:
    walkers = [_spawn(rng, spec) for _ in range(spec.walkers)]
    for walker in walkers:  # start with the walkway already populated
        walker.x = rng.uniform(0, spec.width)
    anomaly_start = int(rng.integers(spec.frames // 5, spec.frames // 3)) if kind else -1
    frames = np.empty((spec.frames, spec.height, spec.width), np.uint8)
    masks = np.zeros_like(frames)
    for t in range(spec.frames):
        if t == anomaly_start:
            walkers.append(_spawn(rng, spec, kind))
        if rng.random() < spec.walkers / 100:  # arrivals keep the crowd size steady
            walkers.append(_spawn(rng, spec))
        canvas = background.copy()
        for walker in walkers:
            _draw(canvas, walker, walker.shade)
            if walker.anomalous:
                _draw(masks[t], walker, 255)
        masks[t][masks[t] > 0] = 255  # binary, like the dataset's masks: no anti-aliased edge
        noisy = canvas + rng.normal(0, 2.0, canvas.shape)
        frames[t] = np.clip(noisy, 0, 255).astype(np.uint8)
        for walker in walkers:
            walker.x += walker.vx
            walker.y += walker.vy
        walkers = [w for w in walkers if -3 * w.size <= w.x <= spec.width + 3 * w.size]
    return frames, masks


def _draw(canvas: np.ndarray, walker: Walker, value: int) -> None:
    """A body ellipse and a head, both anti-aliased, at sub-pixel positions."""
    scale = 1 << SUBPIXEL_BITS

    def point(x: float, y: float) -> tuple[int, int]:
        return int(round(x * scale)), int(round(y * scale))

    body = (int(walker.size * 0.45 * scale), int(walker.size * scale))
    cv2.ellipse(canvas, point(walker.x, walker.y), body, 0, 0, 360, value, -1,
                cv2.LINE_AA, SUBPIXEL_BITS)
    head_y = walker.y - walker.size * 1.25
    cv2.circle(canvas, point(walker.x, head_y), int(walker.size * 0.35 * scale),
               255 - value if value != 255 else 255, -1, cv2.LINE_AA, SUBPIXEL_BITS)


def _write_images(folder: Path, images: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for index, image in enumerate(images):
        cv2.imwrite(str(folder / f"{index:03d}.png"), image)
