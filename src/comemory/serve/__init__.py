"""``comemory serve``: watch several cameras in one process, keep their events in a
database and review them in the browser. See docs/serve.md."""
from comemory.serve.config import CameraConfig, ServeConfig, load_serve_config
from comemory.serve.database import EventStore
from comemory.serve.service import Service

__all__ = ["CameraConfig", "EventStore", "ServeConfig", "Service", "load_serve_config"]
