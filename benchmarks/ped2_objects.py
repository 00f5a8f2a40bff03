"""Objects from motion on UCSD Ped2 (development set): how much of each labelled anomaly
the boxes of ``comemory.data.objects`` cover, and how many boxes a frame gets.

    python benchmarks/ped2_objects.py            # about a minute on 2 cores

The background models first learn every fifth frame of Ped2's training videos (the
camera's normal scene), then each test video is read in order, as ``detect`` would. For
every test frame with a mask: the mask pixels inside a box. Written to
benchmarks/results/ped2-objects.json, with a picture of some frames and their boxes
(ped2-objects.png). The settings are the defaults of ``objects`` in the config, as they
were before this ran: Ped2 is the development set, and a default changed because of these
figures is listed in docs/benchmarks.md. Skips with a message where Ped2 is absent.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import cv2
import numpy as np

from comemory.bench import machine
from comemory.data.datasets import read_dataset
from comemory.data.objects import Box, ObjectFinder, mask_coverage
from ped2_rows import (  # beside this script
    DEFAULT_DATA,
    LEARN_EVERY,
    PROJECT,
    normal_frames,
    object_benchmark_options,
    ped2_missing,
)
from rows import git_commit, write_results

RESULTS = PROJECT / "benchmarks" / "results" / "ped2-objects.json"


def main() -> int:
    args, settings = object_benchmark_options(__doc__, RESULTS,
                                              "JSON file (the picture goes beside it)")
    if ped2_missing(DEFAULT_DATA, "training", "testing"):
        return 0
    normal = normal_frames(read_dataset("frames", DEFAULT_DATA, "training"))
    per_video, examples, seconds, frames = {}, [], 0.0, 0
    for video in read_dataset("frames", DEFAULT_DATA, "testing"):
        finder = ObjectFinder(settings)
        finder.learn(normal)
        images, masks = video.source.read_bgr(), video.masks.load()
        started = time.perf_counter()
        boxes = [finder.find(image) for image in images]
        seconds, frames = seconds + time.perf_counter() - started, frames + len(images)
        per_video[video.name] = _figures(boxes, masks)
        examples += _examples(images, masks, boxes)
    result = {"settings": vars(settings), "learned_from": f"every {LEARN_EVERY}th training "
              "frame", "videos": per_video, "total": _total(per_video),
              "ms_per_frame": 1000 * seconds / frames, "git_commit": git_commit(),
              "machine": machine()}
    write_results(args.results, result)
    _picture(args.results.with_suffix(".png"), examples[::max(1, len(examples) // 6)][:6])
    print({k: round(v, 3) for k, v in result["total"].items()}, flush=True)
    return 0


def _figures(boxes: list[list[Box]], masks: np.ndarray) -> dict:
    covered = [mask_coverage(b, m) for b, m in zip(boxes, masks, strict=True)]
    anomalous = [(c, t) for c, t in covered if t > 0]
    counts = np.array([len(b) for b in boxes])
    labelled = np.array([t > 0 for _, t in covered])
    return {"mask_pixels": sum(t for _, t in anomalous),
            "mask_pixels_covered": sum(c for c, _ in anomalous),
            "anomalous_frames": len(anomalous),
            "anomalous_frames_half_covered": sum(c >= 0.5 * t for c, t in anomalous),
            "frames": len(boxes), "boxes": int(counts.sum()),
            "boxes_normal_frames": int(counts[~labelled].sum()),
            "normal_frames": int((~labelled).sum()), "most_boxes": int(counts.max())}


def _total(per_video: dict) -> dict:
    total = {k: sum(v[k] for v in per_video.values()) for k in next(iter(per_video.values()))
             if k != "most_boxes"}
    return {"mask_coverage": total["mask_pixels_covered"] / total["mask_pixels"],
            "anomalous_frames_half_covered": (total["anomalous_frames_half_covered"]
                                              / total["anomalous_frames"]),
            "boxes_per_frame": total["boxes"] / total["frames"],
            "boxes_per_normal_frame": (total["boxes_normal_frames"]
                                       / max(1, total["normal_frames"])),
            "most_boxes": max(v["most_boxes"] for v in per_video.values())}


def _examples(images, masks, boxes) -> list[np.ndarray]:
    """A frame from the middle of each anomalous stretch: its boxes green, the labelled
    anomaly's outline red."""
    labelled = [i for i, m in enumerate(masks) if m.any()]
    if not labelled:
        return []
    i = labelled[len(labelled) // 2]
    picture = images[i].copy()
    for box in boxes[i]:
        cv2.rectangle(picture, (box.x, box.y), (box.x + box.width - 1, box.y + box.height - 1),
                      (60, 220, 60), 1)
    outline, _ = cv2.findContours((masks[i] > 0).astype(np.uint8), cv2.RETR_EXTERNAL,
                                  cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(picture, outline, -1, (40, 40, 230), 1)
    return [picture]


def _picture(path: Path, examples: list[np.ndarray]) -> None:
    if not examples:
        return
    rows = [np.hstack(examples[i:i + 3]) for i in range(0, len(examples) - len(examples) % 3
                                                       or len(examples), 3)]
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows]
    cv2.imwrite(str(path), np.vstack(rows))


if __name__ == "__main__":
    sys.exit(main())
