"""What ``comemory serve`` watches and where it keeps things, read from a YAML file:

    data: runs/serve              # events.db, clips and thumbnails go here
    # database: postgresql://comemory@db.example/events   # a team's shared one instead
    host: 127.0.0.1               # another address needs a token (token_file or env)
    port: 8765
    clip_max_s: 20                # no clip is longer; a later event starts a new one
    clip_budget_mb: 2000          # the oldest clips are deleted beyond this
    clips: true                   # false: events get a thumbnail but no clip
    cameras:
      - name: entrance            # letters, digits, - and _ (it appears in URLs)
        source: rtsp://10.0.0.5/stream1     # file, folder, camera index or URL
        checkpoint: runs/cpu/checkpoint.pt
        false_alarm_rate: 0.01    # or threshold: 2.5; neither: the checkpoint's own
        adapt_seconds: 120        # opt-in: learn this camera's own threshold (README)
      - name: yard
        source: yard.mp4          # a file is looped, read at its own frame rate
        checkpoint: runs/cpu/checkpoint.pt

Cameras that share a checkpoint share one model, and their frames are scored together.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from comemory.config import read_yaml_mapping
from comemory.errors import ConfigError

NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
TOKEN_ENV = "COMEMORY_TOKEN"


@dataclass
class CameraConfig:
    """One camera: ``source`` as ``detect`` takes it; ``loop``: start a file again at its
    end (a camera or URL is reopened when it drops, whatever this says); ``realtime``:
    read a file at its own frame rate, as a camera would deliver it (False: as fast as
    the model scores, for benchmarks)."""

    name: str
    source: str
    checkpoint: str
    threshold: float | None = None
    false_alarm_rate: float | None = None
    adapt_seconds: float | None = None  # per-camera adaptation: learn from the first seconds
    loop: bool = True
    realtime: bool = True


@dataclass
class ServeConfig:
    """The whole service: cameras, the data folder, the web page's address and its token,
    event and clip settings."""

    cameras: list[CameraConfig]
    data: str = "runs/serve"
    database: str | None = None  # a postgresql:// URL or a SQLite file; None: DATA/events.db
    host: str = "127.0.0.1"
    port: int = 8765
    token_file: str | None = None
    clip_before_s: float = 3.0
    clip_after_s: float = 3.0
    clip_max_s: float = 20.0  # a clip ends here even if events go on (then a new one starts)
    clip_budget_mb: float = 2000.0
    clips: bool = True  # False: events keep a thumbnail only (VP8 costs ~10 ms a frame)
    min_event_frames: int = 3
    event_gap: int = 5
    queue_seconds: float = 2.0  # frames a camera may wait to be scored before some drop
    workers: int = 0  # scoring threads; 0: one per core, at most one per camera
    reconnect_seconds: float = 30.0
    extra: dict[str, Any] = field(default_factory=dict)

    def check(self, source: str = "serve config") -> ServeConfig:
        if not self.cameras:
            raise ConfigError(f"{source}: no cameras; give at least one (name, source, "
                              "checkpoint)")
        seen = set()
        for camera in self.cameras:
            if not NAME.match(camera.name):
                raise ConfigError(f"{source}: camera name {camera.name!r} must be 1-64 "
                                  "letters, digits, '-' or '_' (it appears in URLs)")
            if camera.name in seen:
                raise ConfigError(f"{source}: two cameras are named {camera.name!r}")
            seen.add(camera.name)
            if camera.false_alarm_rate is not None and not 0 < camera.false_alarm_rate < 1:
                raise ConfigError(f"{source}: camera {camera.name}: false_alarm_rate must "
                                  f"lie between 0 and 1, got {camera.false_alarm_rate}")
            if camera.adapt_seconds is not None and (camera.adapt_seconds <= 0
                                                     or camera.threshold is not None):
                raise ConfigError(f"{source}: camera {camera.name}: adapt_seconds must be "
                                  "above 0, and needs the threshold from a false-alarm rate "
                                  "(leave out threshold)")
        if not 0 <= self.port < 65536:
            raise ConfigError(f"{source}: port must be 0-65535, got {self.port}")
        for name in ("clip_before_s", "clip_after_s", "clip_budget_mb", "queue_seconds"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{source}: {name} must not be negative")
        if self.clip_max_s <= 0:
            raise ConfigError(f"{source}: clip_max_s must be above 0 (a clip's longest "
                              f"length in seconds), got {self.clip_max_s}")
        if self.workers < 0:
            raise ConfigError(f"{source}: workers must be >= 0 (0: one per core)")
        if self.min_event_frames < 1 or self.event_gap < 0:
            raise ConfigError(f"{source}: min_event_frames must be >= 1 and event_gap >= 0")
        return self


def load_serve_config(path: str | Path) -> ServeConfig:
    """Read and check a cameras YAML file; errors name the file and the key."""
    return serve_config_from_dict(read_yaml_mapping(path, "cameras YAML"), str(path))


def build_serve_config(path: str | Path | None, sources: list[str],
                       checkpoint: str | Path | None, false_alarm_rate: float | None = None,
                       settings: dict[str, Any] | None = None) -> ServeConfig:
    """What ``comemory serve`` runs: the cameras of the YAML file at ``path`` (if any),
    plus one camera per ``[NAME=]SOURCE`` in ``sources`` scored with ``checkpoint``;
    ``settings`` (data, host, port) that are not None override the file's."""
    data: dict[str, Any] = {"cameras": []}
    if path is not None:
        data = read_yaml_mapping(path, "cameras YAML")
    cameras = list(data.get("cameras") or [])
    if sources and checkpoint is None:
        raise ConfigError("--source needs --checkpoint (the model that scores it)")
    for number, item in enumerate(sources, len(cameras) + 1):
        name, sep, source = item.partition("=")
        if not sep or "://" in name or "/" in name:
            name, source = f"camera{number}", item
        cameras.append({"name": name, "source": source, "checkpoint": str(checkpoint),
                        "false_alarm_rate": false_alarm_rate})
    for key, value in (settings or {}).items():
        if value is not None:
            data[key] = str(value) if isinstance(value, Path) else value
    return serve_config_from_dict({**data, "cameras": cameras}, str(path or "command line"))


def serve_config_from_dict(data: dict[str, Any], source: str = "serve config") -> ServeConfig:
    known = {f.name for f in fields(ServeConfig)} - {"cameras", "extra"}
    unknown = set(data) - known - {"cameras"}
    if unknown:
        raise ConfigError(f"{source}: unknown keys {sorted(unknown)}; known: "
                          f"{sorted(known | {'cameras'})}")
    cameras = data.get("cameras")
    if not isinstance(cameras, list):
        raise ConfigError(f"{source}: 'cameras' must be a list of cameras")
    parsed = [_camera(item, number, source) for number, item in enumerate(cameras, 1)]
    settings = {key: data[key] for key in known if key in data}
    return ServeConfig(cameras=parsed, **settings).check(source)


def _camera(item: Any, number: int, source: str) -> CameraConfig:
    if not isinstance(item, dict):
        raise ConfigError(f"{source}: camera {number} must be a mapping")
    names = {f.name for f in fields(CameraConfig)}
    missing = [key for key in ("name", "source", "checkpoint") if key not in item]
    if missing:
        raise ConfigError(f"{source}: camera {number} lacks {missing}")
    unknown = set(item) - names
    if unknown:
        raise ConfigError(f"{source}: camera {number}: unknown keys {sorted(unknown)}; "
                          f"known: {sorted(names)}")
    values = {**item, "name": str(item["name"]), "source": str(item["source"]),
              "checkpoint": str(item["checkpoint"])}
    return CameraConfig(**values)


def read_token(config: ServeConfig, environ: dict[str, str]) -> str | None:
    """The access token: from ``token_file`` if set, else the COMEMORY_TOKEN variable."""
    if config.token_file:
        path = Path(config.token_file)
        try:
            token = path.read_text().strip()
        except OSError as error:
            raise ConfigError(f"{path}: cannot read the token file ({error.strerror})") \
                from None
        if not token:
            raise ConfigError(f"{path}: the token file is empty")
        return token
    return environ.get(TOKEN_ENV) or None


def is_loopback(host: str) -> bool:
    return host in ("127.0.0.1", "localhost", "::1") or host.startswith("127.")
