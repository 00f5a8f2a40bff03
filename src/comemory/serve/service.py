"""``comemory serve``: several cameras in one process, one model per checkpoint, frames of
the cameras that share it scored together in one batch.

    from comemory.serve import Service, load_serve_config
    service = Service(load_serve_config("cameras.yaml"))
    service.start()            # reading, scoring and the web page, each in threads
    ...
    service.stop()

Why one process: two comemory processes on two cores slow each other about tenfold
(their OpenMP threads fight), so cameras share one scoring loop instead.
"""
from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from pathlib import Path

import torch

from comemory.alerts import AlertPolicy
from comemory.alerts.adapt import Adaptation
from comemory.detect import Detector
from comemory.errors import ConfigError
from comemory.progress import counted
from comemory.serve.cameras import FRAMES_PER_STEP, Camera, CameraFeed
from comemory.serve.config import ServeConfig, is_loopback, read_token
from comemory.serve.database import EventStore
from comemory.serve.media import remove_incomplete

log = logging.getLogger("comemory.serve")

MIN_TOKEN_LENGTH = 16


class Service:
    """The cameras, their detectors, the events database and the web page."""

    def __init__(self, config: ServeConfig, environ: Mapping[str, str] | None = None):
        self.config = config
        self.token = read_token(config, dict(os.environ if environ is None else environ))
        if not is_loopback(config.host):
            if self.token is None:
                raise ConfigError(f"serving on {config.host} (not this machine only) needs a "
                                  "token: set token_file in the config or the COMEMORY_TOKEN "
                                  "variable, or bind 127.0.0.1")
            if len(self.token) < MIN_TOKEN_LENGTH:
                raise ConfigError(f"the token must have at least {MIN_TOKEN_LENGTH} "
                                  "characters")
        self.data = Path(config.data)
        self.media = self.data / "media"
        self.store = EventStore(config.database or self.data / "events.db",
                                [camera.name for camera in config.cameras])
        left = self.store.close_unfinished()
        if left:
            log.warning("%s still open when the service last stopped: closed now, marked "
                        "cut", counted(left, "event was", "events were"))
        remove_incomplete(self.media / "clips")
        self.detectors: dict[str, Detector] = {}
        self.cameras: list[Camera] = []
        for camera in config.cameras:
            detector = self._detector(camera.checkpoint)
            policy = AlertPolicy.from_calibration(
                detector.calibration, camera.threshold, camera.false_alarm_rate,
                config.min_event_frames, config.event_gap, camera.checkpoint)
            if camera.adapt_seconds:
                policy = policy.adapted(Adaptation(camera.adapt_seconds))
            policy.announce(f"camera {camera.name}")
            self.cameras.append(Camera(camera, detector, policy, config, self.store,
                                       self.media))
        self.stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._threads_before: int | None = None
        self.web = None

    def _detector(self, checkpoint: str) -> Detector:
        key = str(Path(checkpoint).resolve())
        if key not in self.detectors:  # errors name the file, before anything runs
            self.detectors[key] = Detector.from_checkpoint(checkpoint)
        return self.detectors[key]

    def camera(self, name: str) -> Camera | None:
        return next((c for c in self.cameras if c.name == name), None)

    def start(self, web: bool = True) -> None:
        """Start reading every camera, the scoring workers and (``web``) the page."""
        for camera in self.cameras:
            camera.feed = CameraFeed(camera.config, self.config.queue_seconds,
                                     self.config.reconnect_seconds, self.stopping)
            camera.feed.start()
            self._threads.append(camera.feed)
        cores = self._threads_before = torch.get_num_threads()
        workers = min(self.config.workers or cores, len(self.cameras))
        # each worker's operators get their share of the threads: more would fight
        torch.set_num_threads(max(1, cores // workers))
        for number in range(workers):
            cameras = self.cameras[number::workers]  # a camera stays with one worker
            scorer = threading.Thread(target=self._score_loop, args=(cameras,),
                                      name=f"scoring-{number}", daemon=True)
            scorer.start()
            self._threads.append(scorer)
        if web:
            from comemory.serve.web import WebServer

            self.web = WebServer(self)
            self.web.start()

    def stop(self) -> None:
        """Stop reading and scoring, close open events (marked cut) and the database."""
        self.stopping.set()
        if self.web is not None:
            self.web.stop()
        for thread in self._threads:
            thread.join(timeout=30)
        for camera in self.cameras:
            camera.finish()
        self.store.close()
        if self._threads_before is not None:
            torch.set_num_threads(self._threads_before)

    def _score_loop(self, cameras: list[Camera]) -> None:
        """One scoring worker: take the frames waiting for each of ``cameras`` (up to
        FRAMES_PER_STEP each); score those that share a checkpoint in one batch; hand each
        result to its camera, in order.
        Workers run at once (PyTorch and OpenCV release the GIL), each with its own flow
        estimators and one shared model per checkpoint."""
        own: dict[int, Detector] = {}  # id of a shared detector -> this worker's twin
        for camera in cameras:
            if id(camera.detector) not in own:
                own[id(camera.detector)] = camera.detector.for_another_thread()
        while not self.stopping.is_set():
            taken = [(camera, item) for camera in cameras
                     for item in camera.feed.take(FRAMES_PER_STEP)]
            if not taken:
                self.stopping.wait(0.005)
                continue
            for key, detector in own.items():
                batch = [(camera, item) for camera, item in taken
                         if id(camera.detector) == key]
                if batch:
                    self._score_batch(detector, batch)

    def _score_batch(self, detector: Detector, batch: list) -> None:
        """``batch``: (camera, frame) pairs, a camera's frames in order."""
        for camera, item in batch:
            if item.resumed:  # only ever a camera's first frame in the batch (take)
                camera.state = detector.new_state()
        results = detector.score_frames(
            [(item.image, item.sequence, None, camera.name) for camera, item in batch],
            [camera.state for camera, _ in batch])
        for (camera, item), result in zip(batch, results, strict=True):
            try:
                camera.handle(item, result)
                camera.error = None
            except Exception as error:  # one camera's disk or database trouble: say so, go on
                camera.error = f"error: {type(error).__name__}: {error}"
                log.exception("camera %s: handling a frame failed", camera.name)
