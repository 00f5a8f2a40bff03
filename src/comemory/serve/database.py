"""Events and their reviews in a database: SQLite by default (a file in the data folder,
no server to start), or PostgreSQL by URL where a team shares one.

    EventStore("runs/serve/events.db")
    EventStore("postgresql://comemory@db.example/events")   # needs comemory[postgres]

Every change is one transaction, durable before ``commit`` returns (SQLite: written ahead
and synced, ``synchronous=FULL``; PostgreSQL: its own write-ahead log), so an event the
service has committed survives kill -9 and a power cut. The schema carries a version;
``MIGRATIONS`` brings an older database up to date when it is opened (one process at a
time: the migration holds the database's write lock), and one from a newer comemory is
refused rather than damaged.

Times are seconds since the epoch (UTC), as ``time.time()`` gives them.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from comemory.errors import ComemoryError, DataError
from comemory.serve.database_address import is_database_url, sqlite_path
from comemory.serve.database_backends import Connection, PostgreSQL, SQLite

VERDICTS = ("true_anomaly", "false_alarm")

# MIGRATIONS[v] takes a database at version v to v + 1. {id} and {real} stand for the
# backend's auto-numbered key and double-precision float (PostgreSQL's REAL has 24 bits:
# it would round a time to minutes).
MIGRATIONS: list[list[str]] = [
    [  # 0 -> 1: events
        """CREATE TABLE events (
            id {id},
            camera TEXT NOT NULL,
            start_time {real} NOT NULL,
            end_time {real},
            start_frame INTEGER NOT NULL,
            end_frame INTEGER NOT NULL,
            peak_frame INTEGER NOT NULL,
            peak_score {real} NOT NULL,
            threshold {real} NOT NULL,
            cut INTEGER NOT NULL DEFAULT 0,
            thumbnail TEXT,
            clip TEXT,
            clip_bytes INTEGER)""",
        "CREATE INDEX events_by_camera ON events (camera, start_time)",
    ],
    [  # 1 -> 2: reviews
        ("ALTER TABLE events ADD COLUMN verdict TEXT CHECK (verdict IN "
         "('true_anomaly', 'false_alarm'))"),
        "ALTER TABLE events ADD COLUMN note TEXT",
        "ALTER TABLE events ADD COLUMN reviewed_at {real}",
    ],
    [  # 2 -> 3: when an open event's last frame was seen, its end if the service dies
        "ALTER TABLE events ADD COLUMN last_seen {real}",
    ],
]
SCHEMA_VERSION = len(MIGRATIONS)
COLUMNS = ("id", "camera", "start_time", "end_time", "start_frame", "end_frame",
           "peak_frame", "peak_score", "threshold", "cut", "thumbnail", "clip", "clip_bytes",
           "verdict", "note", "reviewed_at", "last_seen")
MAX_NOTE = 2000


@dataclass
class EventFilter:
    """Which events ``EventStore.events`` lists: a camera, a time span, reviewed or not."""

    camera: str | None = None
    since: float | None = None
    until: float | None = None
    reviewed: bool | None = None
    limit: int = 200


class EventStore:
    """The events database. One connection, shared by the service's threads under a lock.

    ``location``: a file path (SQLite) or a ``postgresql://`` URL. ``open_event`` when an
    event starts, ``update_event`` as it grows and when it closes, ``set_clip`` once its
    clip is complete on disk, ``review`` from the page. ``shared``: other services may
    write to the same database (PostgreSQL); closing left-open events and listing clips
    to prune then keep to ``cameras``, this service's (the others' are alive, their clips
    on other disks). Every camera sees every event.
    """

    def __init__(self, location: str | Path, cameras: Sequence[str] | None = None):
        self._backend = (PostgreSQL(str(location)) if is_database_url(location)
                         else SQLite(sqlite_path(location)))
        self.location = self._backend.name  # for messages: a URL without its password
        self.shared = isinstance(self._backend, PostgreSQL)
        self._own = list(cameras) if self.shared and cameras is not None else None
        self._lock = threading.Lock()
        self._migrate()

    def _migrate(self) -> None:
        for step in range(SCHEMA_VERSION):
            with self._transaction() as db:
                version = db.version()  # read under the write lock: another may migrate
                if version > SCHEMA_VERSION:
                    raise DataError(f"{self.location}: written by a newer comemory (schema "
                                    f"{version}, this one knows up to {SCHEMA_VERSION}); "
                                    "upgrade comemory")
                if version > step:
                    continue
                for statement in MIGRATIONS[step]:
                    db.execute(db.ddl(statement))
                db.set_version(step + 1)

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        """One transaction under the store's lock: committed at the end, rolled back on an
        error."""
        with self._lock, self._errors_named(), self._backend.transaction() as db:
            yield db

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        with self._lock, self._errors_named():
            yield self._backend.connection()

    @contextmanager
    def _errors_named(self) -> Iterator[None]:
        """A database error becomes one that names the database."""
        try:
            yield
        except self._backend.errors as error:
            raise ComemoryError(f"events database {self.location}: {error}") from None

    @property
    def version(self) -> int:
        with self._reading() as db:
            return db.version()

    def open_event(self, camera: str, start_time: float, start_frame: int, end_frame: int,
                   peak_frame: int, peak_score: float, threshold: float) -> int:
        with self._transaction() as db:
            [row] = db.execute(
                "INSERT INTO events (camera, start_time, start_frame, end_frame, peak_frame, "
                "peak_score, threshold, last_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "RETURNING id",
                (camera, start_time, start_frame, end_frame, peak_frame, peak_score,
                 threshold, start_time))
            return int(row["id"])

    def update_event(self, event_id: int, end_frame: int, peak_frame: int, peak_score: float,
                     end_time: float | None = None, thumbnail: str | None = None,
                     cut: bool = False, seen_at: float | None = None) -> None:
        """The event as it grows (``seen_at``: when its last frame so far was read) or as
        it closes (``end_time``)."""
        with self._transaction() as db:
            db.execute("UPDATE events SET end_frame = ?, peak_frame = ?, peak_score = ?, "
                       "end_time = COALESCE(?, end_time), "
                       "last_seen = COALESCE(?, ?, last_seen), "
                       "thumbnail = COALESCE(?, thumbnail), cut = ? WHERE id = ?",
                       (end_frame, peak_frame, peak_score, end_time, end_time, seen_at,
                        thumbnail, int(cut), event_id))

    def set_clip(self, event_ids: list[int], clip: str, size: int) -> None:
        with self._transaction() as db:
            for event_id in event_ids:
                db.execute("UPDATE events SET clip = ?, clip_bytes = ? WHERE id = ?",
                           (clip, size, event_id))

    def close_unfinished(self) -> int:
        """Events left open by a service that stopped without closing them (kill -9, a
        crash): closed at the last frame seen of them (updated about once a second; the
        start for a row from before that was kept) and marked cut (in a shared database,
        this service's cameras' only)."""
        where, values = _cameras_clause(self._own)
        with self._transaction() as db:
            return db.count_changed(f"UPDATE events SET end_time = COALESCE(last_seen, "
                                    f"start_time), cut = 1 WHERE end_time IS NULL{where}",
                                    values)

    def review(self, event_id: int, verdict: str, note: str, now: float) -> bool:
        """Record a person's verdict; False when there is no such event."""
        if verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {verdict!r}")
        if len(note) > MAX_NOTE:
            raise ValueError(f"a note holds at most {MAX_NOTE} characters")
        with self._transaction() as db:
            return db.count_changed("UPDATE events SET verdict = ?, note = ?, reviewed_at = ? "
                                    "WHERE id = ?", (verdict, note, now, event_id)) == 1

    def event(self, event_id: int) -> dict | None:
        with self._reading() as db:
            rows = db.execute("SELECT * FROM events WHERE id = ?", (event_id,))
        return rows[0] if rows else None

    def events(self, where: EventFilter | None = None) -> list[dict]:
        """Newest first."""
        where = where or EventFilter()
        clauses, values = [], []
        if where.camera is not None:
            clauses.append("camera = ?")
            values.append(where.camera)
        if where.since is not None:
            clauses.append("start_time >= ?")
            values.append(where.since)
        if where.until is not None:
            clauses.append("start_time <= ?")
            values.append(where.until)
        if where.reviewed is not None:
            clauses.append("verdict IS NOT NULL" if where.reviewed else "verdict IS NULL")
        sql = "SELECT * FROM events"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY start_time DESC, id DESC LIMIT ?"
        with self._reading() as db:
            return db.execute(sql, (*values, where.limit))

    def count(self) -> int:
        """How many events the database holds."""
        with self._reading() as db:
            return int(db.execute("SELECT COUNT(*) AS n FROM events")[0]["n"])

    def clips_oldest_first(self) -> list[tuple[str, int]]:
        """(clip file, bytes) of every clip still kept (in a shared database, of this
        service's cameras), the oldest event's first."""
        where, values = _cameras_clause(self._own)
        with self._reading() as db:
            rows = db.execute(
                f"SELECT clip, MAX(clip_bytes) AS size FROM events WHERE clip IS NOT NULL"
                f"{where} GROUP BY clip ORDER BY MIN(start_time)", values)
        return [(row["clip"], int(row["size"] or 0)) for row in rows]

    def forget_clip(self, clip: str) -> None:
        with self._transaction() as db:
            db.execute("UPDATE events SET clip = NULL, clip_bytes = NULL WHERE clip = ?",
                       (clip,))

    def reviews_csv(self) -> str:
        """Every reviewed event as CSV, oldest first."""
        with self._reading() as db:
            rows = db.execute(
                "SELECT id, camera, start_time, end_time, peak_score, threshold, verdict, "
                "note, reviewed_at FROM events WHERE verdict IS NOT NULL "
                "ORDER BY start_time, id")
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["event", "camera", "start_utc", "end_utc", "peak_score",
                         "threshold", "verdict", "note", "reviewed_utc"])
        for row in rows:
            writer.writerow([row["id"], row["camera"], _utc(row["start_time"]),
                             _utc(row["end_time"]), f"{row['peak_score']:.4f}",
                             f"{row['threshold']:.4f}", row["verdict"], row["note"] or "",
                             _utc(row["reviewed_at"])])
        return out.getvalue()

    def close(self) -> None:
        with self._lock:
            self._backend.close()


def _cameras_clause(cameras: Sequence[str] | None) -> tuple[str, tuple]:
    if cameras is None:
        return "", ()
    if not cameras:
        return " AND 1 = 0", ()
    return f" AND camera IN ({', '.join('?' for _ in cameras)})", tuple(cameras)


def _utc(seconds: float | None) -> str:
    if seconds is None:
        return ""
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).isoformat(timespec="seconds")
