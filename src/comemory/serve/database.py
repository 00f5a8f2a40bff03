"""Events and their reviews in SQLite: a file in the data folder, no server to start.

Every change is one transaction, written ahead (WAL) and synced (``synchronous=FULL``)
before ``commit`` returns, so an event the service has committed survives kill -9 and a
power cut. The schema carries a version; ``MIGRATIONS`` brings an older file up to date
when it is opened, and a file from a newer comemory is refused rather than damaged.

Times are seconds since the epoch (UTC), as ``time.time()`` gives them.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from comemory.errors import ComemoryError, DataError

VERDICTS = ("true_anomaly", "false_alarm")

# MIGRATIONS[v] takes a file at version v to v + 1.
MIGRATIONS: list[list[str]] = [
    [  # 0 -> 1: events
        """CREATE TABLE events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            camera TEXT NOT NULL,
            start_time REAL NOT NULL,
            end_time REAL,
            start_frame INTEGER NOT NULL,
            end_frame INTEGER NOT NULL,
            peak_frame INTEGER NOT NULL,
            peak_score REAL NOT NULL,
            threshold REAL NOT NULL,
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
        "ALTER TABLE events ADD COLUMN reviewed_at REAL",
    ],
]
SCHEMA_VERSION = len(MIGRATIONS)
COLUMNS = ("id", "camera", "start_time", "end_time", "start_frame", "end_frame",
           "peak_frame", "peak_score", "threshold", "cut", "thumbnail", "clip", "clip_bytes",
           "verdict", "note", "reviewed_at")
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

    ``open_event`` when an event starts, ``update_event`` as it grows and when it closes,
    ``set_clip`` once its clip is complete on disk, ``review`` from the page.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False,
                                       isolation_level=None)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._lock = threading.Lock()
            self._migrate()
        except sqlite3.DatabaseError as error:
            raise DataError(f"{self.path}: not a comemory events database ({error})") from None

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise DataError(f"{self.path}: written by a newer comemory (schema {version}, "
                            f"this one knows up to {SCHEMA_VERSION}); upgrade comemory")
        for step in range(version, SCHEMA_VERSION):
            with self._transaction():
                for statement in MIGRATIONS[step]:
                    self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {step + 1}")

    def _transaction(self):
        return _Transaction(self._db, self._lock)

    @property
    def version(self) -> int:
        return self._db.execute("PRAGMA user_version").fetchone()[0]

    def open_event(self, camera: str, start_time: float, start_frame: int, end_frame: int,
                   peak_frame: int, peak_score: float, threshold: float) -> int:
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO events (camera, start_time, start_frame, end_frame, peak_frame, "
                "peak_score, threshold) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (camera, start_time, start_frame, end_frame, peak_frame, peak_score,
                 threshold))
            return int(cursor.lastrowid)

    def update_event(self, event_id: int, end_frame: int, peak_frame: int, peak_score: float,
                     end_time: float | None = None, thumbnail: str | None = None,
                     cut: bool = False) -> None:
        with self._transaction() as db:
            db.execute("UPDATE events SET end_frame = ?, peak_frame = ?, peak_score = ?, "
                       "end_time = COALESCE(?, end_time), "
                       "thumbnail = COALESCE(?, thumbnail), cut = ? WHERE id = ?",
                       (end_frame, peak_frame, peak_score, end_time, thumbnail, int(cut),
                        event_id))

    def set_clip(self, event_ids: list[int], clip: str, size: int) -> None:
        with self._transaction() as db:
            db.executemany("UPDATE events SET clip = ?, clip_bytes = ? WHERE id = ?",
                           [(clip, size, i) for i in event_ids])

    def close_unfinished(self, now: float) -> int:
        """Events left open by a service that stopped without closing them (kill -9, a
        crash): their end is unknown, so they are closed now and marked cut."""
        with self._transaction() as db:
            return db.execute("UPDATE events SET end_time = ?, cut = 1 WHERE end_time IS NULL",
                              (now,)).rowcount

    def review(self, event_id: int, verdict: str, note: str, now: float) -> bool:
        """Record a person's verdict; False when there is no such event."""
        if verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {verdict!r}")
        if len(note) > MAX_NOTE:
            raise ValueError(f"a note holds at most {MAX_NOTE} characters")
        with self._transaction() as db:
            cursor = db.execute("UPDATE events SET verdict = ?, note = ?, reviewed_at = ? "
                                "WHERE id = ?", (verdict, note, now, event_id))
            return cursor.rowcount == 1

    def event(self, event_id: int) -> dict | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM events WHERE id = ?",
                                   (event_id,)).fetchone()
        return dict(row) if row is not None else None

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
        with self._lock:
            rows = self._db.execute(sql, (*values, where.limit)).fetchall()
        return [dict(row) for row in rows]

    def count(self) -> int:
        """How many events the database holds."""
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0])

    def clips_oldest_first(self) -> list[tuple[str, int]]:
        """(clip file, bytes) of every clip still kept, the oldest event's first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT clip, MAX(clip_bytes) FROM events WHERE clip IS NOT NULL "
                "GROUP BY clip ORDER BY MIN(start_time)").fetchall()
        return [(row[0], int(row[1] or 0)) for row in rows]

    def forget_clip(self, clip: str) -> None:
        with self._transaction() as db:
            db.execute("UPDATE events SET clip = NULL, clip_bytes = NULL WHERE clip = ?",
                       (clip,))

    def reviews_csv(self) -> str:
        """Every reviewed event as CSV, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, camera, start_time, end_time, peak_score, threshold, verdict, "
                "note, reviewed_at FROM events WHERE verdict IS NOT NULL "
                "ORDER BY start_time, id").fetchall()
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
            self._db.close()


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT under the store's lock; ROLLBACK on an error."""

    def __init__(self, db: sqlite3.Connection, lock: threading.Lock):
        self.db, self.lock = db, lock

    def __enter__(self) -> sqlite3.Connection:
        self.lock.acquire()
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except BaseException:
            self.lock.release()
            raise
        return self.db

    def __exit__(self, kind, error, trace) -> None:
        try:
            self.db.execute("ROLLBACK" if kind else "COMMIT")
        except sqlite3.Error as failure:
            raise ComemoryError(f"events database: cannot commit ({failure})") from None
        finally:
            self.lock.release()


def _utc(seconds: float | None) -> str:
    if seconds is None:
        return ""
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).isoformat(timespec="seconds")
