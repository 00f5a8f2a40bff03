"""The detector: frames in, training-calibrated scores and score maps out, one frame at a
time. Which scores alarm is the alert policy's to say (comemory.alerts).

    from comemory.alerts import AlertPolicy
    from comemory.detect import Detector
    detector = Detector.from_checkpoint("runs/cpu/checkpoint.pt")
    policy = AlertPolicy.from_calibration(detector.calibration)  # the checkpoint's threshold
    for result in detector.run("camera.mp4"):      # or a folder, "0", "rtsp://..."
        if policy.alarm(result.score):
            print(result.video, result.index, result.score)

Causal: frame t+1 is scored when it arrives, from (I_{t-1}, I_t), the flow between them
and I_{t+1} itself; nothing later is used, and the score is normalised with training
statistics only (the checkpoint's calibration), never with the video's own range. The
first ``past_frames`` frames of a video (and of every stretch after lost frames) have
no score.
"""
from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from comemory.checkpoint import load_checkpoint, model_from_checkpoint
from comemory.config import Config
from comemory.cpu import PRECISIONS, resolve_precision
from comemory.data.crops import crop_window, found_boxes
from comemory.data.flow import GridFlow
from comemory.data.frames import box_from_model_grid, checked_bgr, resize_frame
from comemory.data.model_input import as_cached_flow, to_model_range
from comemory.data.objects import ObjectFinder
from comemory.data.stream import open_sources
from comemory.detect.engines import Engine, floor_engine, score_parts, torch_engine
from comemory.errors import CheckpointError, ConfigError
from comemory.progress import progress as progress_bar
from comemory.scoring import (
    Calibration,
    CausalMean,
    FrameScorer,
    VideoErrors,
    scorer_for,
)
from comemory.scoring.formulas import FloorScorer
from comemory.scoring.motion_model import DIRECTION_BINS, box_motion
from comemory.scoring.objects import frame_errors_of_objects

STAGES = ("decode", "flow", "objects", "model", "score")


@dataclass
class FrameResult:
    """One frame's verdict.

    video: the source's name; index: frame number in it; time: seconds from its start
    (None where the frame rate is unknown); score: training-calibrated (None while the
    detector warms up); parts: the score's parts (psnr, flow_error, frame_error, distance,
    motion: those the model has); heatmap: float32 (S, S) score map at the model's input
    size (None without a score); image: the frame as read, uint8 BGR (H, W, 3); read_at:
    the wall clock (time.time()) when a live source delivered it, where known.
    """

    video: str
    index: int
    time: float | None
    score: float | None
    parts: dict[str, float] = field(default_factory=dict)
    heatmap: np.ndarray | None = None
    image: np.ndarray | None = None
    read_at: float | None = None
    objects: list[ObjectScore] = field(default_factory=list)

    @property
    def top_box(self) -> list[int] | None:
        """The box (x, y, width, height) of the highest-scoring object; None without one."""
        if not self.objects:
            return None
        top = max(self.objects, key=lambda item: item.score)
        return [top.x, top.y, top.width, top.height]


@dataclass(frozen=True)
class ObjectScore:
    """One object of a frame: its box (x, y, width, height) in the frame's own pixels
    and its score, on the frame score's scale (before causal smoothing)."""

    x: int
    y: int
    width: int
    height: int
    score: float


class Detector:
    """Scores frames as they arrive with a trained, calibrated model.

    ``score_frame(frame)`` takes uint8 frames of any size, grey (H, W) or BGR (H, W, 3) as
    OpenCV reads them; ``run(source)`` reads a source and yields a FrameResult per frame;
    ``reset()`` starts a new video. ``stage_seconds`` adds up the time spent in each stage:
    decode (reading the source), flow (resizing and optical flow), objects (finding them,
    with ``model.input: objects``), model (the network), score (the formula; with
    objects, cutting the crops too).
    """

    def __init__(self, engine: Engine, config: Config, calibration: Calibration,
                 past_frames: int):
        self.engine, self.config, self.calibration = engine, config, calibration
        self.past_frames = past_frames
        self.uses_flow = config.model.architecture != "mnad"
        self.objects = config.model.input == "objects"
        # a network predicts frame t+1 from the flow between the past frames; the floor
        # scores the flow into the frame itself, as the offline floor does
        self.floor = config.model.architecture == "flow_floor"
        model = config.model
        self.flow = (GridFlow(config.flow, model.image_size, model.channels, model.resize)
                     if self.uses_flow else None)
        self._parts = score_parts(config)
        self.scorer = scorer_for(config.model.architecture, config.score)
        self.stage_seconds = dict.fromkeys(STAGES, 0.0)
        self.reset()

    @classmethod
    def from_checkpoint(cls, path: str | Path, engine: str = "torch",
                        onnx_path: str | Path | None = None, precision: str = "fp32",
                        channels_last: bool = False) -> Detector:
        """A detector from a calibrated checkpoint. ``engine``: "torch", or "onnx" with the
        file written by ``comemory export`` (``onnx_path``). ``precision`` (fp32, bf16
        autocast, or auto: bf16 where the CPU has it natively) and ``channels_last`` apply
        to the torch engine."""
        state = load_checkpoint(path)
        model, config, calibration = model_from_checkpoint(state, path)
        if model is None:  # the floor: no network to run, in any engine
            return cls(floor_engine(config.score), config, calibration,
                       FloorScorer.PAST_FRAMES)
        if engine == "torch":
            if precision not in PRECISIONS:
                raise ConfigError(f"precision must be one of {list(PRECISIONS)}, "
                                  f"got {precision!r}")
            runner = torch_engine(FrameScorer(model, config.score),
                                  resolve_precision(precision) == "bf16", channels_last)
        elif engine == "onnx":
            from comemory.export import onnx_engine  # onnxruntime is an optional extra

            if onnx_path is None:
                raise CheckpointError("--engine onnx needs the exported model (--onnx FILE), "
                                      "written by `comemory export --format onnx`")
            runner = onnx_engine(onnx_path)
        else:
            raise CheckpointError(f"engine must be torch or onnx, got {engine!r}")
        return cls(runner, config, calibration, model.past_frames)

    def for_another_thread(self) -> Detector:
        """A detector that shares this one's model and calibration but has its
        own flow estimator (OpenCV's DIS keeps state between calls), so that two threads
        can score at the same time: PyTorch releases the GIL inside its operators."""
        twin = Detector(self.engine, self.config, self.calibration, self.past_frames)
        twin.stage_seconds = self.stage_seconds  # one account of where the time goes
        return twin

    def new_state(self) -> StreamState:
        """A fresh memory for one more video scored beside others (``score_frames``)."""
        finder = ObjectFinder(self.config.objects) if self.objects else None
        return StreamState(deque(maxlen=self.past_frames),
                           CausalMean(self.config.score.causal_window), finder=finder)

    def reset(self) -> None:
        """Forget the previous frames: the next frames start a new video."""
        self.state = self.new_state()

    def score_frame(self, frame: np.ndarray, index: int = 0, time_s: float | None = None,
                    video: str = "") -> FrameResult:
        """Score ``frame`` given the frames before it (causal)."""
        return self.score_frames([(frame, index, time_s, video)], [self.state])[0]

    def score_frames(self, frames: list[tuple[np.ndarray, int, float | None, str]],
                     states: list[StreamState]) -> list[FrameResult]:
        """Frames of one or several videos, (frame, index, time, video) each with its
        video's StreamState, scored in one batch through the model: what ``serve`` does
        with several cameras, and with the frames queued up for one. A video's frames
        come in their order; the scores are those of ``score_frame`` one at a time (each
        frame's score still reads only the frames before it)."""
        results, ready = [], []
        for (frame, index, time_s, video), state in zip(frames, states, strict=True):
            result, current, flow = self._prepare(frame, index, time_s, video, state)
            results.append(result)
            boxes = self._boxes(current, state)  # every frame: the finder learns the scene
            if len(state.frames) == self.past_frames:
                ready.append(Ready(result, state, np.stack(state.frames), current,
                                   flow if self.floor else state.last_flow, boxes))
            state.frames.append(current)
            state.last_flow = flow
        if ready:
            started, in_model = time.perf_counter(), self.stage_seconds["model"]
            if self.objects:
                self._score_objects(ready)
            else:
                self._score(ready)
            in_model = self.stage_seconds["model"] - in_model  # the engine times itself
            self.stage_seconds["score"] += time.perf_counter() - started - in_model
        return results

    def _boxes(self, current: np.ndarray, state: StreamState) -> np.ndarray | None:
        """The objects of a grid frame (S, S, C) as crops take them, (n, 4) x, y, width,
        height, the scene box first; None on the frame path."""
        if state.finder is None:
            return None
        started = time.perf_counter()
        size = self.config.model.image_size
        found = found_boxes(state.finder, current, self.config.objects.margin)
        boxes = np.array([(0, 0, size, size), *found], dtype=np.int32)
        self.stage_seconds["objects"] += time.perf_counter() - started
        return boxes

    def _prepare(self, frame: np.ndarray, index: int, time_s: float | None, video: str,
                 state: StreamState) -> tuple[FrameResult, np.ndarray, np.ndarray | None]:
        """The frame on the model grid and the flow from the previous frame to it."""
        started = time.perf_counter()
        model = self.config.model
        image = checked_bgr(frame)
        current = resize_frame(image, model.image_size, model.channels, model.resize)
        result = FrameResult(video, index, time_s, None, image=image)
        flow_in = None
        if self.flow is not None:
            flow_input = self.flow.input_frame(image, current)
            if state.flow_input is not None:
                # rounded as the cache rounds flows for `evaluate`: without it a near tie
                # between two patches could go one way live and the other way offline
                flow = self.flow.grid_flow(state.flow_input, flow_input)
                flow_in = as_cached_flow(flow).astype(np.float32)
            state.flow_input = flow_input
        self.stage_seconds["flow"] += time.perf_counter() - started
        return result, current, flow_in

    def run(self, source: str | Path, reconnect_seconds: float = 30.0,
            progress: bool = True) -> Iterator[FrameResult]:
        """Every frame of ``source`` (a video file, a folder of frames or videos, a camera
        index, a stream URL), scored as it is read."""
        for stream in open_sources(source, reconnect_seconds):
            yield from self.run_stream(stream, progress)

    def run_stream(self, stream, progress: bool = True) -> Iterator[FrameResult]:
        self.reset()
        bar = progress_bar(desc=stream.name, total=stream.total, unit="frame",
                           disable=not progress)
        frames = iter(stream)
        try:
            while True:
                started = time.perf_counter()
                frame = next(frames, None)
                self.stage_seconds["decode"] += time.perf_counter() - started
                if frame is None:
                    return
                if frame.resumed:
                    self.reset()  # the previous frame is not this one's neighbour
                started = time.perf_counter()
                result = self.score_frame(frame.image, frame.index, frame.time, stream.name)
                bar.update(1)
                if stream.live:
                    bar.set_postfix(latency=f"{(time.perf_counter() - started) * 1e3:.0f} ms")
                yield result
        finally:
            bar.close()

    def _score(self, ready: list[Ready]) -> None:
        """Fill in the score, parts and heatmap of each frame in ``ready``, in one pass of
        the model."""
        size = self.config.model.image_size
        no_flow = np.zeros((2, size, size), np.float32)
        past = np.stack([to_model_range(r.past).numpy() for r in ready])
        target = np.stack([to_model_range(r.current).numpy() for r in ready])
        flow = np.stack([no_flow if r.flow is None else r.flow.transpose(2, 0, 1)
                         for r in ready])
        out = self._timed_engine(past, target, np.ascontiguousarray(flow))
        for i, item in enumerate(ready):  # in order: smoothing is causal
            one = {name: value[i:i + 1] for name, value in out.items()}
            errors = VideoErrors(item.result.video, np.array([item.result.index]),
                                 flow_maps=one["flow_map"], frame_maps=one["frame_map"],
                                 motion_rows=one.get("motion_rows"),
                                 flow_error_rows=one.get("flow_error_rows"),
                                 **{p: one[p] for p in self._parts})
            self._finish(item, errors)

    def _score_objects(self, ready: list[Ready]) -> None:
        """Each frame's objects cropped (``comemory.data.crops``) and scored in one pass
        of the model; a frame takes the parts of its object with the largest flow error
        (``comemory.scoring.objects``), each object gets its own score."""
        crop = self.config.model.crop_size
        size = self.config.model.image_size
        past, target, flow = [], [], []
        for item in ready:
            window = np.concatenate([item.past, item.current[None]])
            grid_flow = (item.flow if item.flow is not None
                         else np.zeros((size, size, 2), np.float32))
            for box in item.boxes:
                frames, box_flow = crop_window(window, grid_flow, box, crop,
                                               self.config.model.crop_flow)
                frames = to_model_range(frames).numpy()
                past.append(frames[:-1])
                target.append(frames[-1])
                flow.append(box_flow)
        out = self._timed_engine(np.stack(past), np.stack(target),
                                 np.ascontiguousarray(np.stack(flow)))
        start = 0
        for item in ready:
            count = len(item.boxes)
            rows = {p: out[p][start:start + count] for p in self._parts}
            start += count
            motion = self._object_motion(item)
            found = {} if motion is None else {"motion_vectors": motion[1:],
                                               "vector_frames": np.arange(1, count)}
            objects = VideoErrors(item.result.video, np.full(count, item.result.index),
                                  **rows, **found)
            if motion is not None:
                rows["motion_vectors"] = motion
            errors = frame_errors_of_objects(item.result.video, {
                **rows, "frames": objects.frames, "boxes": item.boxes}, size, keep_maps=True)
            self._finish(item, errors)
            item.result.objects = self._object_scores(item, objects)

    def _object_motion(self, item: Ready) -> np.ndarray | None:
        """(n, 8) each box's motion in grid pixels (the scene box's zeros) where
        ``score.motion_model`` reads it, else None."""
        if self.config.score.motion_model == "off":
            return None
        size = self.config.model.image_size
        flow = item.flow if item.flow is not None else np.zeros((size, size, 2), np.float32)
        return np.array([np.zeros(DIRECTION_BINS)]
                        + [box_motion(flow, box) for box in item.boxes[1:]])

    def _object_scores(self, item: Ready, objects: VideoErrors) -> list[ObjectScore]:
        """The found objects (the scene box left out) in the frame's pixels, with their
        scores: the formula on each one's parts, or the largest of its heatmap where the
        formula reads maps (location)."""
        image, size = item.result.image, self.config.model.image_size
        if self.scorer.reads_maps:
            scores = [float(item.result.heatmap[y:y + h, x:x + w].max())
                      for x, y, w, h in item.boxes]
        else:
            scores = self.scorer.frame_scores(objects, self.calibration).tolist()
        return [ObjectScore(*box_from_model_grid(box, image.shape[0], image.shape[1], size,
                                                 self.config.model.resize), score)
                for box, score in zip(item.boxes[1:], scores[1:], strict=True)]

    def _finish(self, item: Ready, errors: VideoErrors) -> None:
        """A frame's score (causally smoothed), parts and heatmap from its errors."""
        result = item.result
        raw = float(self.scorer.frame_scores(errors, self.calibration)[0])
        result.score = item.state.smoother.push(raw)  # score.causal_window: past frames only
        result.parts = {p: float(getattr(errors, p)[0]) for p in self._parts}
        result.heatmap = self.scorer.pixel_maps(errors, self.calibration)[0]

    def _timed_engine(self, past: np.ndarray, target: np.ndarray,
                      flow: np.ndarray) -> dict[str, np.ndarray]:
        started = time.perf_counter()
        out = self._run_engine(past, target, flow)
        self.stage_seconds["model"] += time.perf_counter() - started
        return out

    def _run_engine(self, past: np.ndarray, target: np.ndarray,
                    flow: np.ndarray) -> dict[str, np.ndarray]:
        """The engine on a batch; one sample at a time where it takes batch 1 only (ONNX)."""
        step = getattr(self.engine, "max_batch", None) or len(past)
        parts = [self.engine(past[i:i + step], target[i:i + step], flow[i:i + step])
                 for i in range(0, len(past), step)]
        return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


@dataclass
class Ready:
    """A frame ready to be scored: its result (filled in), its video's state, the past
    frames (P, S, S, C) and the frame (S, S, C) on the grid, the flow (S, S, 2) between
    the last two past frames (None without flow), its boxes (objects; None for frames)."""

    result: FrameResult
    state: StreamState
    past: np.ndarray
    current: np.ndarray
    flow: np.ndarray | None
    boxes: np.ndarray | None


@dataclass
class StreamState:
    """What a Detector remembers of one video between its frames: the last
    ``past_frames`` frames on the model grid, the causal smoother, the previous frame as
    the flow reads it, the flow from the second-last frame to the last, and (objects)
    the object finder's background models."""

    frames: deque[np.ndarray]
    smoother: CausalMean
    flow_input: np.ndarray | None = None
    last_flow: np.ndarray | None = None
    finder: ObjectFinder | None = None  # model.input objects: it learns this video's scene
