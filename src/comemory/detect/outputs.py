"""What ``comemory detect`` writes for one video, as sinks of the alert road
(comemory.alerts.Sink): scores.csv and scores.jsonl (a row per frame, flushed as written),
events.json (rewritten as events close, and at the end), annotated.mp4, scores.png."""
from __future__ import annotations

import csv
import json
from collections import deque
from pathlib import Path

from comemory import storage
from comemory.alerts import AlertPolicy, AlertStream, Event, Sink, Verdict
from comemory.detect.annotate import AnnotatedVideo
from comemory.detect.detector import Detector, FrameResult
from comemory.detect.engines import score_parts
from comemory.evaluate import plots


def file_outputs(folder: Path, detector: Detector, policy: AlertPolicy, alerts: AlertStream,
                 fps: float | None, video: bool) -> list[Sink]:
    """The sinks of one video's folder, in the order they are closed (events.json is
    written after the video, so that it is there once the video is)."""
    folder.mkdir(parents=True, exist_ok=True)
    sinks: list[Sink] = [ScoreFiles(folder, score_parts(detector.config))]
    if video:
        sinks.append(VideoOutput(AnnotatedVideo(folder / "annotated.mp4", fps or 25.0,
                                                policy.threshold,
                                                low=detector.calibration.median_score(),
                                                resize=detector.config.model.resize), alerts))
    return [*sinks, EventsFile(folder / "events.json", policy, alerts, fps),
            ScorePlot(folder / "scores.png", policy, alerts)]


class ScoreFiles:
    """scores.csv and scores.jsonl: frame, time, score, whether it alarms, the score's
    ``parts``; each row flushed as it is written, so a killed run keeps its rows."""

    def __init__(self, folder: Path, parts: list[str]):
        self.parts = parts
        self._csv_handle = (folder / "scores.csv").open("w", newline="")
        self._csv = csv.writer(self._csv_handle)
        self._csv.writerow(["frame", "time", "score", "anomalous", *parts])
        self._jsonl = (folder / "scores.jsonl").open("w")

    def add(self, result: FrameResult, verdict: Verdict) -> None:
        time_text = "" if result.time is None else f"{result.time:.3f}"
        score_text = "" if result.score is None else f"{result.score:.6g}"
        self._csv.writerow([result.index, time_text, score_text, int(verdict.alarm),
                            *(f"{result.parts[p]:.6g}" if p in result.parts else ""
                              for p in self.parts)])
        self._csv_handle.flush()
        record = {"frame": result.index, "time": result.time, "score": result.score,
                  "anomalous": verdict.alarm, "threshold": verdict.threshold, **result.parts}
        self._jsonl.write(json.dumps(record) + "\n")
        self._jsonl.flush()

    def close(self, closed: list[Event], stopped_because: str | None = None) -> None:
        self._csv_handle.close()
        self._jsonl.close()


class EventsFile:
    """events.json: the policy, the events so far, how far the source was read, and
    whether the run is complete (``stopped_because`` says why not). Rewritten atomically
    at the start, whenever an event closes, and at the end."""

    def __init__(self, path: Path, policy: AlertPolicy, alerts: AlertStream,
                 fps: float | None):
        self.path, self.policy, self.alerts, self.fps = path, policy, alerts, fps
        self._write(final=False)

    def add(self, result: FrameResult, verdict: Verdict) -> None:
        if verdict.closed:
            self._write(final=False)

    def close(self, closed: list[Event], stopped_because: str | None = None) -> None:
        self._write(final=stopped_because is None, stopped_because=stopped_because)

    def _write(self, final: bool, stopped_because: str | None = None) -> None:
        record = {**self.policy.to_dict(), "fps": self.fps, "complete": final,
                  "frames_read": self.alerts.frames, "last_frame": self.alerts.last_frame,
                  "last_threshold": self.alerts.threshold,
                  "events": [e.to_dict() for e in self.alerts.events]}
        if stopped_because is not None:
            record["stopped_because"] = stopped_because
        storage.write_text(self.path, json.dumps(record, indent=2))


class ScorePlot:
    """scores.png at the end: the scores (kept as a bounded envelope, so memory stays
    flat however long the run), the threshold and the events."""

    def __init__(self, path: Path, policy: AlertPolicy, alerts: AlertStream):
        self.path, self.policy, self.alerts = path, policy, alerts
        self.scores = plots.ScoreEnvelope()

    def add(self, result: FrameResult, verdict: Verdict) -> None:
        if result.score is not None:
            self.scores.add(result.index, result.score)

    def close(self, closed: list[Event], stopped_because: str | None = None) -> None:
        if self.scores.count:
            plots.detection_plot(self.path, self.scores, self.alerts.threshold,
                                 [(e.start_frame, e.end_frame) for e in self.alerts.events],
                                 self.path.parent.name)


class VideoOutput:
    """annotated.mp4. A frame waits until it is settled whether it belongs to an event
    (at most about min_event_frames + event_gap frames), so that the video marks each
    frame as events.json does."""

    def __init__(self, video: AnnotatedVideo, alerts: AlertStream):
        self.video, self.alerts = video, alerts
        self._unsettled: deque[tuple[FrameResult, Verdict]] = deque()

    def add(self, result: FrameResult, verdict: Verdict) -> None:
        self._unsettled.append((result, verdict))
        self._release(self.alerts.settled_until())

    def close(self, closed: list[Event], stopped_because: str | None = None) -> None:
        self._release(None)
        self.video.close()

    def _release(self, settled_until: int | None) -> None:
        """Write the waiting frames before ``settled_until`` (all with None)."""
        while self._unsettled and (settled_until is None
                                   or self._unsettled[0][0].index < settled_until):
            result, verdict = self._unsettled.popleft()
            self.video.add(result, self.alerts.in_event(result.index), verdict.alarm,
                           verdict.threshold)
