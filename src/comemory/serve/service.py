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
import time
from collections.abc import Mapping
from pathlib import Path

from comemory.checkpoint import load_checkpoint
from comemory.detection import Detector, choose_threshold
from comemory.errors import ConfigError
from comemory.serve.cameras import Camera, CameraFeed
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
        self.store = EventStore(self.data / "events.db")
        left = self.store.close_unfinished(time.time())
        if left:
            log.warning("%d events were still open when the service last stopped: closed "
                        "now, marked cut", left)
        remove_incomplete(self.media / "clips")
        self.detectors: dict[str, Detector] = {}
        self.cameras: list[Camera] = []
        for camera in config.cameras:
            detector = self._detector(camera.checkpoint)
            threshold = choose_threshold(detector.calibration, camera.threshold,
                                          camera.false_alarm_rate, camera.checkpoint)
            self.cameras.append(Camera(camera, detector, threshold, config, self.store,
                                       self.media))
        self.stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self.web = None

    def _detector(self, checkpoint: str) -> Detector:
        key = str(Path(checkpoint).resolve())
        if key not in self.detectors:
            load_checkpoint(checkpoint)  # a clear error naming the file before anything runs
            self.detectors[key] = Detector.from_checkpoint(checkpoint)
        return self.detectors[key]

    def camera(self, name: str) -> Camera | None:
        return next((c for c in self.cameras if c.name == name), None)

    def start(self, web: bool = True) -> None:
        """Start reading every camera, the scoring loop and (``web``) the page."""
        for camera in self.cameras:
            camera.feed = CameraFeed(camera.config, self.config.queue_seconds,
                                     self.config.reconnect_seconds, self.stopping)
            camera.feed.start()
            self._threads.append(camera.feed)
        scorer = threading.Thread(target=self._score_loop, name="scoring", daemon=True)
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

    def _score_loop(self) -> None:
        """Take the next frame of every camera that has one; score those of each detector
        in one batch; hand each result to its camera."""
        while not self.stopping.is_set():
            taken = [(camera, camera.feed.take()) for camera in self.cameras]
            taken = [(camera, item) for camera, item in taken if item is not None]
            if not taken:
                self.stopping.wait(0.005)
                continue
            for detector in self.detectors.values():
                batch = [(camera, item) for camera, item in taken if camera.detector is detector]
                if batch:
                    self._score_batch(detector, batch)

    def _score_batch(self, detector: Detector, batch: list) -> None:
        for camera, item in batch:
            if item.resumed:
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
