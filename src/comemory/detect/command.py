"""``comemory detect``: a source through the detector, the alert policy and the file
sinks, video by video (source -> Detector -> AlertPolicy -> detect.outputs)."""
from __future__ import annotations

import time
from pathlib import Path

from comemory import storage
from comemory.alerts import EVENT_GAP, MIN_EVENT_FRAMES, AlertPolicy, AlertStream, Sink
from comemory.alerts.adapt import Adaptation
from comemory.data.stream import open_sources
from comemory.detect.detector import Detector
from comemory.detect.outputs import file_outputs
from comemory.errors import DataError, Interrupted


def detect(source: str | Path, checkpoint: str | Path, out_dir: str | Path,
           threshold: float | None = None, false_alarm_rate: float | None = None,
           min_event_frames: int = MIN_EVENT_FRAMES, event_gap: int = EVENT_GAP,
           video: bool = True,
           engine: str = "torch", onnx_path: str | Path | None = None,
           reconnect_seconds: float = 30.0, progress: bool = True, precision: str = "fp32",
           channels_last: bool = False, adapt_seconds: float | None = None,
           adapt_from: str | Path | None = None) -> list[dict]:
    """Score ``source`` and write the results; returns one summary dict per video.

    Each video gets a folder under ``out_dir`` (named after it) with scores.csv and
    scores.jsonl (a row per frame, flushed as written), events.json, annotated.mp4
    (unless ``video`` is False) and scores.png. The threshold is ``threshold`` if given,
    else the one for ``false_alarm_rate`` on the checkpoint's held-out normal scores, else
    the checkpoint's own. With ``adapt_seconds`` or ``adapt_from`` each source learns its
    own threshold (comemory.alerts.adapt): from its first ``adapt_seconds``, and from the
    footage ``adapt_from``, which the operator marks normal and which is scored first.
    If the run stops early (Ctrl-C, a stream that cannot be
    reopened), events.json says ``"complete": false``, where and why it stopped, and marks
    an event still going on as ``"cut": true``; Ctrl-C then raises Interrupted, whose
    message says what was kept and how to go on.
    """
    detector = Detector.from_checkpoint(checkpoint, engine, onnx_path, precision, channels_last)
    policy = AlertPolicy.from_calibration(detector.calibration, threshold, false_alarm_rate,
                                          min_event_frames, event_gap, checkpoint)
    policy = policy.adapted(adaptation(detector, adapt_seconds, adapt_from, progress))
    policy.announce("detect")
    summaries = []
    for stream in open_sources(source, reconnect_seconds):
        folder = Path(out_dir) / stream.name
        with storage.folder_lock(folder, "detect"):
            summaries.append(_detect_video(stream, detector, policy, folder, video, progress))
    return summaries


def adaptation(detector: Detector, seconds: float | None, footage: str | Path | None,
               progress: bool = True) -> Adaptation | None:
    """The per-camera adaptation asked for: learning each source's first ``seconds``, the
    ``footage`` marked normal (scored here, every video of it), both, or None."""
    if seconds is None and footage is None:
        return None
    normal = []
    for stream in open_sources(footage, 0.0) if footage is not None else []:
        normal += [r.score for r in detector.run_stream(stream, progress) if r.score is not None]
    if footage is not None and not normal:
        raise DataError(f"{footage}: no frame of the footage marked normal could be scored")
    return Adaptation(seconds or 0.0, normal_scores=tuple(normal))


def _detect_video(stream, detector: Detector, policy: AlertPolicy, folder: Path, video: bool,
                  progress: bool) -> dict:
    alerts = policy.watch(folder.name, stream.fps)
    sinks = file_outputs(folder, detector, policy, alerts, stream.fps, video)
    started = time.perf_counter()
    try:
        for result in detector.run_stream(stream, progress):
            verdict = alerts.add(result.index, result.score, result.top_box)
            for sink in sinks:
                sink.add(result, verdict)
    except KeyboardInterrupt:
        _close(sinks, alerts, "interrupted (Ctrl-C)")
        raise Interrupted(_interrupted_message(folder, alerts.last_frame, stream)) from None
    except BaseException as error:
        _close(sinks, alerts, f"{type(error).__name__}: {error}")
        raise
    _close(sinks, alerts, None)
    seconds = time.perf_counter() - started
    return {"video": folder.name, "folder": str(folder), "frames": alerts.frames,
            "scored": alerts.scored, "anomalous": alerts.alarms, "events": len(alerts.events),
            "seconds": seconds, "fps": alerts.frames / seconds if seconds > 0 else None}


def _close(sinks: list[Sink], alerts: AlertStream, stopped_because: str | None) -> None:
    """End the source: close the open event (cut if it stopped early), then each sink."""
    closed = alerts.finish(cut=stopped_because is not None)
    for sink in sinks:
        sink.close(closed, stopped_because)


def _interrupted_message(folder: Path, last_frame: int | None, stream) -> str:
    where = "before the first frame" if last_frame is None else f"after frame {last_frame}"
    again = ("run the same command to watch it again" if stream.live else
             "run the same command again to score it from the start (a partial run is "
             "not continued)")
    return (f"detect interrupted {where} of {stream.name}: the results so far are in "
            f"{folder}, marked incomplete in events.json; {again}")
