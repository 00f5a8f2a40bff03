"""comemory serve: several cameras in one process, events in SQLite or PostgreSQL that
survive kill -9, clips a browser plays, the page in a real headless Chromium, the access
token, and memory that stays flat however long it runs."""
from __future__ import annotations

import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import time
import tracemalloc
import urllib.error
import urllib.request
from contextlib import closing
from pathlib import Path

import cv2
import numpy as np
import psycopg
import pytest
import yaml

from comemory.alerts import AlertPolicy
from comemory.data.frames import list_frames
from comemory.detect import Detector, FrameResult
from comemory.detect.outputs import file_outputs
from comemory.errors import ConfigError, DataError
from comemory.evaluate.plots import ScoreEnvelope
from comemory.serve import EventStore, Service
from comemory.serve.cameras import Camera, QueuedFrame
from comemory.serve.config import build_serve_config, serve_config_from_dict
from comemory.serve.database import MIGRATIONS, SCHEMA_VERSION, EventFilter
from comemory.serve.media import INCOMPLETE, ClipRecorder, prune_clips
from comemory.serve.web import WebServer
from comemory.train.finetune import false_alarm_clips, finetune
from tests.postgres_server import free_port

FAST_VIDEO = "01"  # the synthetic scene's test video with an object 5x too fast
CHROMIUM = Path("/usr/bin/chromium")
TOKEN = "a-long-enough-secret-0123456789"


def frames_folder(scene: Path, split: str, video: str) -> str:
    return str(scene / split / "frames" / video)


def two_cameras(checkpoint: Path, scene: Path, data: Path, **settings) -> dict:
    """A config dict: a normal training video and the anomalous test video, looped."""
    return {"data": str(data), "port": 0, "clip_before_s": 0.4, "clip_after_s": 0.4,
            **settings,
            "cameras": [
                {"name": "walkway", "source": frames_folder(scene, "training", "01"),
                 "checkpoint": str(checkpoint)},
                {"name": "street", "source": frames_folder(scene, "testing", FAST_VIDEO),
                 "checkpoint": str(checkpoint)}]}


def served_to_the_end(checkpoint: Path, scene: Path, data: Path) -> Service:
    """A stopped Service that scored ``two_cameras`` once through, as fast as it could."""
    config = serve_config_from_dict(two_cameras(checkpoint, scene, data))
    for camera in config.cameras:
        camera.loop, camera.realtime = False, False
    service = Service(config, environ={})
    service.start(web=False)
    wait_for(lambda: all(c.feed.status == "ended" and c.view.scored == c.feed.read
                         for c in service.cameras), 120, "both files read and scored")
    service.stop()
    return service


def wait_for(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"waited {seconds:.0f} s for {what}")


def get(url: str, headers: dict | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def post_json(url: str, body, headers: dict | None = None,
              content_type: str = "application/json") -> tuple[int, dict]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="POST",
                                     headers={"Content-Type": content_type, **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


# --- configuration -------------------------------------------------------------------

def test_config_errors_name_the_problem(tmp_path, trained_run):
    checkpoint, scene, _ = trained_run
    good = two_cameras(checkpoint, scene, tmp_path)
    with pytest.raises(ConfigError, match="two cameras are named 'walkway'"):
        serve_config_from_dict({**good, "cameras": good["cameras"][:1] * 2})
    bad_name = {**good["cameras"][0], "name": "../etc"}
    with pytest.raises(ConfigError, match="letters, digits"):
        serve_config_from_dict({**good, "cameras": [bad_name]})
    with pytest.raises(ConfigError, match="unknown keys"):
        serve_config_from_dict({**good, "colour": "red"})
    with pytest.raises(ConfigError, match="lacks"):
        serve_config_from_dict({"cameras": [{"name": "x"}]})
    path = tmp_path / "cameras.yaml"
    path.write_text("cameras: [unclosed")
    with pytest.raises(ConfigError, match=f"{path}: not valid YAML"):
        build_serve_config(path, [], None)
    # --source flags alone: names made up, or given as NAME=SOURCE
    config = build_serve_config(None, ["a.mp4", "door=rtsp://h/s"], checkpoint)
    assert [(c.name, c.source) for c in config.cameras] == [("camera1", "a.mp4"),
                                                            ("door", "rtsp://h/s")]


# --- the database --------------------------------------------------------------------

def test_database_migrates_an_old_file_and_keeps_its_events(tmp_path):
    path = tmp_path / "events.db"
    old = sqlite3.connect(path)  # a file as the first schema left it
    for statement in MIGRATIONS[0]:
        old.execute(statement.format(id="INTEGER PRIMARY KEY AUTOINCREMENT", real="REAL"))
    old.execute("INSERT INTO events (camera, start_time, start_frame, end_frame, peak_frame, "
                "peak_score, threshold) VALUES ('door', 100.0, 5, 9, 7, 3.5, 2.0)")
    old.execute("PRAGMA user_version = 1")
    old.commit()
    old.close()
    store = EventStore(path)
    assert store.version == SCHEMA_VERSION == 3
    [event] = store.events()
    assert (event["camera"], event["peak_score"], event["verdict"]) == ("door", 3.5, None)
    assert store.review(event["id"], "false_alarm", "a shadow", now=200.0)
    assert not store.review(event["id"] + 1, "false_alarm", "", now=200.0)
    with pytest.raises(ValueError, match="verdict"):
        store.review(event["id"], "maybe", "", now=200.0)
    assert store.events(EventFilter(reviewed=True))[0]["note"] == "a shadow"
    assert store.events(EventFilter(reviewed=False)) == [] and store.count() == 1
    assert store.events(EventFilter(camera="other")) == []
    assert store.events(EventFilter(since=150.0)) == []
    lines = store.reviews_csv().splitlines()
    assert lines[0].startswith("event,camera,start_utc")
    assert "false_alarm,a shadow" in lines[1] and "1970-01-01T00:01:40" in lines[1]
    # left open by a killed service: closed where it was last seen, not at the restart
    open_old = store.open_event("door", 300.0, 50, 52, 51, 3.0, 2.0)
    store.update_event(open_old, 60, 55, 4.0, seen_at=302.5)
    assert store.close_unfinished() == 2  # and the old file's one, seen before last_seen
    assert (store.event(open_old)["end_time"], store.event(open_old)["cut"]) == (302.5, 1)
    assert store.event(event["id"])["end_time"] == 100.0  # its start: all that is known
    store.update_event(open_old, 60, 55, 4.0, end_time=303.0)  # a closed one keeps its end
    assert store.event(open_old)["last_seen"] == 303.0
    store.close()
    newer = sqlite3.connect(path)
    newer.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    newer.commit()
    newer.close()
    with pytest.raises(DataError, match="newer comemory"):
        EventStore(path)
    (tmp_path / "junk.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(DataError, match="junk.db: not a comemory events database"):
        EventStore(tmp_path / "junk.db")


def test_postgres_database_migrates_keeps_reviews_and_refuses_a_newer_schema(
        postgres_server):
    """The same store on a PostgreSQL server: a database left at schema 1 is brought up to
    date with its event kept (times to the microsecond: double precision), reviews and
    filters work, and a newer schema is refused."""
    url = postgres_server.url()
    with psycopg.connect(url, autocommit=True) as old:  # as the first schema left it
        for statement in MIGRATIONS[0]:
            old.execute(statement.format(id="BIGINT GENERATED BY DEFAULT AS IDENTITY "
                                         "PRIMARY KEY", real="DOUBLE PRECISION"))
        old.execute("CREATE TABLE comemory_schema (version INTEGER NOT NULL)")
        old.execute("INSERT INTO comemory_schema VALUES (1)")
        old.execute("INSERT INTO events (camera, start_time, start_frame, end_frame, "
                    "peak_frame, peak_score, threshold) "
                    "VALUES ('door', 1790000000.123456, 5, 9, 7, 3.5, 2.0)")
    store = EventStore(url)
    assert store.shared and store.version == SCHEMA_VERSION == 3
    [event] = store.events()
    assert event["start_time"] == 1790000000.123456 and event["verdict"] is None
    new = store.open_event("yard", 1790000001.5, 0, 3, 1, 4.0, 2.0)
    assert new == event["id"] + 1 and store.count() == 2
    store.update_event(new, 8, 6, 4.5, end_time=1790000002.0, thumbnail=f"{new}.jpg")
    assert store.event(new)["thumbnail"] == f"{new}.jpg" and store.event(new)["end_frame"] == 8
    assert store.review(event["id"], "false_alarm", "a shadow", now=1790000100.0)
    assert not store.review(new + 1, "false_alarm", "", now=1790000100.0)
    assert [e["id"] for e in store.events(EventFilter(reviewed=False))] == [new]
    assert store.events(EventFilter(camera="door", reviewed=True))[0]["note"] == "a shadow"
    assert [e["id"] for e in store.events(EventFilter(since=1790000001.0))] == [new]
    assert "false_alarm,a shadow" in store.reviews_csv().splitlines()[1]
    store.close()
    with psycopg.connect(url, autocommit=True) as newer:
        newer.execute("UPDATE comemory_schema SET version = %s", (SCHEMA_VERSION + 1,))
    with pytest.raises(DataError, match="newer comemory"):
        EventStore(url)


def test_services_sharing_a_postgres_database_touch_only_their_own_cameras(
        postgres_server, tmp_path):
    """Two services on one database: each sees every event, but closing events left open
    and pruning clips keep to its own cameras (the other's are alive, on its disk)."""
    url = postgres_server.url()
    door, yard = EventStore(url, cameras=["door"]), EventStore(url, cameras=["yard"])
    running = door.open_event("door", 10.0, 0, 3, 1, 4.0, 2.0)  # still going
    door.set_clip([running], "door-1.webm", 500)
    crashed = yard.open_event("yard", 11.0, 0, 3, 1, 4.0, 2.0)  # its service was killed
    assert yard.close_unfinished() == 1
    assert door.event(running)["end_time"] is None
    assert yard.event(crashed)["end_time"] == 11.0 and yard.event(crashed)["cut"] == 1
    assert {e["id"] for e in yard.events()} == {running, crashed}
    (tmp_path / "door-1.webm").write_bytes(b"x" * 500)
    assert yard.clips_oldest_first() == []
    assert prune_clips(yard, tmp_path, budget_bytes=0) == 0
    assert door.event(running)["clip"] == "door-1.webm" and (tmp_path / "door-1.webm").exists()
    yard.close()
    # the server drops door's connection (a restart, say): the next change opens it again
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      "WHERE datname = current_database() AND pid <> pg_backend_pid()")
    door.update_event(running, 9, 5, 6.0, end_time=30.0)
    assert door.event(running)["end_time"] == 30.0
    assert prune_clips(door, tmp_path, budget_bytes=0) == 1  # its own clip it does prune
    assert not (tmp_path / "door-1.webm").exists()
    door.close()


def test_a_database_url_never_shows_its_password(postgres_server, caplog):
    from comemory.serve.database_address import redacted

    url = postgres_server.url(password="hunter2-secret")
    assert redacted(url) == url.replace("hunter2-secret", "***")
    store = EventStore(url)  # the server accepts any password (trust), so this connects
    assert "hunter2-secret" not in str(store.location)
    store.close()
    unreachable = url.replace(f":{postgres_server.port}/", f":{free_port()}/")
    with pytest.raises(DataError, match="cannot connect") as error:
        EventStore(unreachable)
    assert "hunter2-secret" not in str(error.value) and "***" in str(error.value)
    with pytest.raises(DataError, match="--clips") as error:
        false_alarm_clips(url)
    assert "hunter2-secret" not in str(error.value)
    assert "hunter2-secret" not in caplog.text



@pytest.mark.parametrize("location", [
    "postgresql://bob:hunter2-secret@127.0.0.1:PORT/db",
    "postgresql://bob@127.0.0.1:PORT/db?password=hunter2-secret&sslmode=disable",
    "host=127.0.0.1 port=PORT user=bob password=hunter2-secret dbname=db",
    "host=127.0.0.1 port=PORT user=bob password = 'hunter2-secret' dbname=db",
])
def test_no_form_of_a_database_address_shows_its_password(location, tmp_path, caplog,
                                                          monkeypatch):
    from comemory.serve.database_address import is_database_url, redacted

    location = location.replace("PORT", str(free_port()))  # nothing listens there
    monkeypatch.chdir(tmp_path)
    assert is_database_url(location) and "hunter2-secret" not in redacted(location)
    assert "***" in redacted(location)
    with pytest.raises(DataError, match="cannot connect") as error:
        EventStore(location)
    assert "hunter2-secret" not in str(error.value) + caplog.text
    assert list(tmp_path.iterdir()) == []  # no SQLite file named after the address
    monkeypatch.setenv("PGPASSWORD", "env-secret-too")
    assert redacted("failed for env-secret-too") == "failed for ***"


def test_only_a_path_or_a_sqlite_url_is_a_sqlite_database(tmp_path):
    from comemory.serve.database_address import is_database_url, sqlite_path

    assert sqlite_path(f"sqlite:///{tmp_path}/a.db") == tmp_path / "a.db"  # absolute: 4 /
    assert sqlite_path("sqlite:///runs/a.db") == Path("runs/a.db")  # relative: 3, as SQLAlchemy
    assert sqlite_path("sqlite:events.db") == Path("events.db")
    assert sqlite_path("runs/events.db") == Path("runs/events.db")
    assert not is_database_url(str(tmp_path / "events.db"))
    with pytest.raises(ConfigError, match=r"mysql://bob:\*\*\*@db/events: a mysql: URL is "
                                          "not supported"):
        EventStore("mysql://bob:pw@db/events")
    store = EventStore(f"sqlite:///{tmp_path}/b.db")  # tmp_path starts with /: absolute
    store.close()
    assert (tmp_path / "b.db").is_file()


def test_false_alarms_without_their_clip_are_listed_not_used(tmp_path):
    store = EventStore(tmp_path / "events.db")
    kept, pruned, true = (store.open_event("door", t, 0, 3, 1, 4.0, 2.0) for t in (1, 2, 3))
    for event in (kept, pruned, true):
        store.set_clip([event], f"door-{event}.webm", 10)
        store.review(event, "true_anomaly" if event == true else "false_alarm", "", now=9.0)
    store.close()
    clips = tmp_path / "media" / "clips"
    clips.mkdir(parents=True)
    (clips / f"door-{kept}.webm").write_bytes(b"x" * 10)
    (clips / f"door-{true}.webm").write_bytes(b"x" * 10)
    assert false_alarm_clips(tmp_path / "events.db") == ([(kept, clips / f"door-{kept}.webm")],
                                                         [pruned])
    with pytest.raises(DataError, match="no such events database"):
        false_alarm_clips(tmp_path / "missing.db")


def test_clips_play_in_browsers_and_are_pruned_oldest_first(tmp_path):
    store = EventStore(tmp_path / "events.db")
    folder = tmp_path / "clips"
    done = []
    recorder = ClipRecorder("door", folder, 10.0, before=3, after=2,
                            on_done=lambda ids, name, size: done.append((ids, name, size)))
    frames = [np.full((90, 120, 3), 20 * i, np.uint8) for i in range(12)]
    for frame in frames[:5]:
        recorder.push(frame)  # only the last 3 wait for a clip
    first = store.open_event("door", 1.0, 5, 5, 5, 3.0, 2.0)
    recorder.start(first)
    recorder.push(frames[5])
    assert list(folder.glob(f"{INCOMPLETE}*")), "a clip being written has its temporary name"
    second = store.open_event("door", 2.0, 6, 6, 6, 3.0, 2.0)
    recorder.start(second)  # starts before the first clip ends: joins it
    recorder.push(frames[6])
    recorder.stop()
    for frame in frames[7:]:
        recorder.push(frame)
    [(ids, name, size)] = done
    assert ids == [first, second] and name == f"door-{first}.webm"
    assert not list(folder.glob(f"{INCOMPLETE}*"))
    capture = cv2.VideoCapture(str(folder / name))
    count = 0
    while capture.read()[0]:
        count += 1
    assert count == 3 + 2 + 2  # 3 before, the two event frames, 2 after
    assert (folder / name).read_bytes()[:4] == b"\x1a\x45\xdf\xa3"  # WebM (EBML) header
    store.set_clip(ids, name, size)
    later = store.open_event("door", 3.0, 20, 20, 20, 3.0, 2.0)
    (folder / "door-late.webm").write_bytes(b"x" * 100)
    store.set_clip([later], "door-late.webm", 100)
    assert prune_clips(store, folder, budget_bytes=size + 50) == 1  # the older one goes
    assert not (folder / name).exists() and (folder / "door-late.webm").exists()
    assert store.event(first)["clip"] is None and store.event(later)["clip"] == "door-late.webm"



def test_a_clip_ends_at_its_longest_and_the_next_event_starts_a_new_one(tmp_path, capfd):
    """Events closer together than clip_after_s keep joining the clip being written; it
    still ends at ``longest`` frames, and an event that goes on past that keeps its first
    ``longest`` frames."""
    folder, done = tmp_path / "clips", []
    recorder = ClipRecorder("door", folder, 10.0, before=0, after=3, longest=5,
                            on_done=lambda ids, name, size: done.append((ids, name)))
    frame = np.full((90, 120, 3), 128, np.uint8)
    for event in (1, 2, 3):  # each starts two frames after the last ended: joins
        recorder.start(event)
        recorder.push(frame)
        recorder.stop()
        recorder.push(frame)
    assert done == [([1, 2, 3], "door-1.webm")]  # 6 frames asked for, 5 written
    recorder.start(4)  # the next event: a new clip
    for _ in range(12):  # and it goes on past the longest clip
        recorder.push(frame)
    recorder.stop()
    assert done[1] == ([4], "door-4.webm") and len(done) == 2
    assert "not supported with codec id" not in capfd.readouterr().err  # OpenCV's tag line
    assert not list(folder.glob(f"{INCOMPLETE}*"))
    for _, name in done:
        capture, count = cv2.VideoCapture(str(folder / name)), 0
        while capture.read()[0]:
            count += 1
        assert count == 5


def test_a_clip_being_written_counts_against_the_disk_budget(tmp_path):
    store = EventStore(tmp_path / "events.db")
    old = store.open_event("door", 1.0, 5, 5, 5, 3.0, 2.0)
    (tmp_path / "door-old.webm").write_bytes(b"x" * 100)
    store.set_clip([old], "door-old.webm", 100)
    (tmp_path / f"{INCOMPLETE}door-9.webm").write_bytes(b"x" * 100)
    assert prune_clips(store, tmp_path, budget_bytes=150) == 1
    assert not (tmp_path / "door-old.webm").exists()


def test_the_readmes_serve_command_writes_clips(tmp_path, trained_run):
    """The README's command with its default clip settings, on a looped anomalous video
    whose events come closer together than clip_after_s: the first clip is finished
    within clip_max_s."""
    checkpoint, scene, _ = trained_run
    log = (tmp_path / "serve.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "comemory.cli", "serve", "--checkpoint", str(checkpoint),
         "--source", f"walkway={frames_folder(scene, 'training', '01')}",
         "--source", f"street={frames_folder(scene, 'testing', FAST_VIDEO)}", "--port", "0"],
        cwd=tmp_path, stdout=log, stderr=log)
    database = tmp_path / "runs" / "serve" / "events.db"

    def clips() -> list[str]:
        if not database.exists():
            return []
        with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
            try:
                return [row[0] for row in db.execute("SELECT clip FROM events") if row[0]]
            except sqlite3.OperationalError:
                return []

    try:
        found = wait_for(clips, 120, "an event with a clip")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        log.close()
    clip = tmp_path / "runs" / "serve" / "media" / "clips" / found[0]
    assert cv2.VideoCapture(str(clip)).read()[0]

# --- several cameras in one process ---------------------------------------------------

def test_serve_scores_as_detect_does_and_keeps_events(tmp_path, trained_run):
    """Two cameras batched through one model score each frame as ``detect`` scores it
    alone; the anomalous one raises an event with a thumbnail and a playable clip."""
    checkpoint, scene, _ = trained_run
    service = served_to_the_end(checkpoint, scene, tmp_path / "serve")
    assert len(service.detectors) == 1  # one model for both cameras
    detector = Detector.from_checkpoint(checkpoint)
    alone = [r.score for r in detector.run(frames_folder(scene, "testing", FAST_VIDEO),
                                           progress=False)]
    street = service.camera("street")
    together = [score for _, score in street.view.curve]
    scored_alone = [s for s in alone if s is not None]
    np.testing.assert_allclose(together, scored_alone[-len(together):], rtol=1e-4, atol=1e-4)
    store = EventStore(tmp_path / "serve" / "events.db")
    events = store.events(EventFilter(camera="street"))
    assert events, "the fast object raised no event"
    event = events[-1]
    assert event["end_time"] is not None and event["peak_score"] > event["threshold"]
    thumbnail = tmp_path / "serve" / "media" / "thumbnails" / event["thumbnail"]
    assert cv2.imread(str(thumbnail)) is not None
    assert (tmp_path / "serve" / "media" / "clips" / event["clip"]).stat().st_size > 0


def test_a_camera_that_cannot_be_opened_does_not_stop_the_others(tmp_path, trained_run):
    checkpoint, scene, _ = trained_run
    settings = two_cameras(checkpoint, scene, tmp_path / "serve")
    settings["cameras"][0]["source"] = str(tmp_path / "missing.mp4")
    service = Service(serve_config_from_dict(settings), environ={})
    service.start(web=False)
    try:
        wait_for(lambda: service.camera("street").view.scored > 20, 60, "the good camera scoring")
        status = service.camera("walkway").status()
        assert status["status"].startswith("reconnecting") and "missing.mp4" in status["status"]
    finally:
        service.stop()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_kill_9_loses_no_committed_event_and_leaves_no_half_clip(tmp_path, trained_run,
                                                                  backend, request):
    checkpoint, scene, _ = trained_run
    data = tmp_path / "serve"
    settings = two_cameras(checkpoint, scene, data, clip_before_s=0.2)
    url = (request.getfixturevalue("postgres_server").url(password="kill-9-secret")
           if backend == "postgres" else None)
    if url:
        settings["database"] = url
    path = tmp_path / "cameras.yaml"
    path.write_text(yaml.safe_dump(settings))
    log = (tmp_path / "serve.log").open("w")
    process = subprocess.Popen([sys.executable, "-m", "comemory.cli", "serve", "--config",
                                str(path), "--threads", "1"], stdout=log, stderr=log)
    database = data / "events.db"
    clips = data / "media" / "clips"

    def committed() -> list[tuple]:
        """The rows another connection sees committed (read only, beside the service)."""
        if url:
            with psycopg.connect(url) as db:
                try:
                    return db.execute("SELECT id, camera, start_time, clip FROM events"
                                      ).fetchall()
                except psycopg.errors.UndefinedTable:
                    return []
        if not database.exists():
            return []
        with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
            try:
                return db.execute("SELECT id, camera, start_time, clip FROM events").fetchall()
            except sqlite3.OperationalError:
                return []

    try:
        # kill it while a clip is being written: an event with its clip still open
        wait_for(lambda: any(r[3] for r in committed()), 120, "a finished clip")
        wait_for(lambda: list(clips.glob(f"{INCOMPLETE}*")), 60, "a clip being written")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
        log.close()
    before = committed()
    assert list(clips.glob(f"{INCOMPLETE}*")), "the kill left no clip in writing"
    output = (tmp_path / "serve.log").read_text()
    assert "events in " in output and "kill-9-secret" not in output
    service = Service(build_serve_config(path, [], None), environ={})
    try:
        after = {row["id"]: row for row in service.store.events(EventFilter(limit=1000))}
        assert {r[0] for r in before} <= set(after)
        for event_id, camera, start, clip in before:
            assert (after[event_id]["camera"], after[event_id]["start_time"]) == (camera, start)
            assert after[event_id]["end_time"] is not None  # open ones closed, marked cut
        assert not list(clips.glob(f"{INCOMPLETE}*"))
        for row in after.values():
            if row["clip"]:
                capture = cv2.VideoCapture(str(clips / row["clip"]))
                assert capture.read()[0], f"{row['clip']} does not decode"
    finally:
        service.stop()


# --- bounded memory -------------------------------------------------------------------

def test_score_envelope_stays_small_and_keeps_every_peak():
    envelope = ScoreEnvelope(bins=64)
    scores = np.random.default_rng(0).normal(size=10_000)
    scores[7_777] = 50.0
    for frame, score in enumerate(scores):
        envelope.add(frame, float(score))
    assert len(envelope.frames) <= 64 and envelope.count == 10_000
    assert max(envelope.high) == 50.0 and min(envelope.low) == scores.min()
    assert envelope.frames[0] == 0 and envelope.frames == sorted(envelope.frames)
    with pytest.raises(ValueError):
        ScoreEnvelope(bins=3)


def test_detect_outputs_memory_does_not_grow_with_frames(tmp_path, trained_run):
    checkpoint, _, _ = trained_run
    detector = Detector.from_checkpoint(checkpoint)
    policy = AlertPolicy.from_calibration(detector.calibration)
    alerts = policy.watch("v", 25.0)
    sinks = file_outputs(tmp_path / "out", detector, policy, alerts, 25.0, video=False)
    rng = np.random.default_rng(0)

    def feed(start: int, count: int) -> None:  # normal frames: events are not the point
        for index in range(start, start + count):
            score = policy.threshold - 1.0 - abs(float(rng.normal()))
            verdict = alerts.add(index, score)
            for sink in sinks:
                sink.add(FrameResult("v", index, None, score, {"psnr": 30.0}), verdict)

    tracemalloc.start()  # before the warm-up, so what it allocated and later frees counts
    feed(0, 5000)
    before = tracemalloc.take_snapshot()
    feed(5000, 60_000)
    grown = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(before, "filename"))
    tracemalloc.stop()
    closed = alerts.finish()
    for sink in sinks:
        sink.close(closed)
    plot = sinks[-1]
    assert plot.scores.count == 65_000 and (tmp_path / "out" / "scores.png").is_file()
    # keeping every score would cost > 60 bytes a frame (3.6 MB here); the plot's
    # envelope is bounded (2048 bins, at most about 200 KB whatever the frame count)
    assert grown < 400_000, f"memory grew by {grown} bytes over 60 000 frames"


def test_serve_memory_per_frame_does_not_grow(tmp_path, trained_run):
    """Forty loops of the anomalous video, looped, through the scoring side of
    one camera (events, thumbnails and clips written all along): Python-side memory after
    the warm-up stays flat."""
    checkpoint, scene, _ = trained_run
    config = serve_config_from_dict(two_cameras(checkpoint, scene, tmp_path / "serve"))
    service = Service(config, environ={})
    camera: Camera = service.camera("street")
    detector = camera.detector
    images = [cv2.imread(str(p)) for p in list_frames(Path(frames_folder(scene, "testing",
                                                                         FAST_VIDEO)))]
    sequence = 0

    def feed(count: int) -> None:
        nonlocal sequence
        for _ in range(count):
            image = images[sequence % len(images)]
            resumed = sequence % len(images) == 0  # a looped file's start
            if resumed:
                camera.state = detector.new_state()
            [result] = detector.score_frames([(image, sequence, None, "street")],
                                             [camera.state])
            camera.handle(QueuedFrame(sequence, image, time.time(), resumed), result)
            sequence += 1

    tracemalloc.start()  # before the warm-up, so what it allocated and later frees counts
    loop = len(images)  # snapshots at the same point of the loop: an event open at one
    feed(8 * loop)      # and not the other would hold pictures that are no growth
    snapshots = [tracemalloc.take_snapshot()]
    events_before = len(service.store.events(EventFilter(limit=1000)))
    for _ in range(2):
        feed(16 * loop)
        snapshots.append(tracemalloc.take_snapshot())
    tracemalloc.stop()
    # A leak grows in both halves; a one-off resize of an interpreter-wide table (the
    # interned strings, which pathlib adds every new file name to, 7.7 MB once in a full
    # test session) in one only. The bound per frame is the old one: 100 kB over 32 loops
    changes = [after.compare_to(before, "lineno")
               for before, after in zip(snapshots, snapshots[1:], strict=False)]
    grown = [sum(change.size_diff for change in half) for half in changes]
    events = len(service.store.events(EventFilter(limit=1000))) - events_before
    service.stop()
    assert events >= 10, "the loop was meant to raise an event each time round"
    assert min(grown) < 50_000, (f"memory grew by {grown} bytes in each half of "
                                 f"{32 * loop} frames: {[half[:5] for half in changes]}")


# --- the web page and its safety -------------------------------------------------------

@pytest.fixture
def web_service(tmp_path, trained_run):
    """A Service with a token and one stored event, its page on 127.0.0.1 (no cameras
    running: only the web side is under test)."""
    checkpoint, scene, _ = trained_run
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    config = serve_config_from_dict(two_cameras(checkpoint, scene, tmp_path / "serve",
                                                token_file=str(token_file)))
    service = Service(config, environ={})
    event = service.store.open_event("street", 100.0, 1, 5, 3, 4.0, 2.0)
    thumbnails = service.media / "thumbnails"
    thumbnails.mkdir(parents=True)
    cv2.imwrite(str(thumbnails / f"{event}.jpg"), np.zeros((8, 8, 3), np.uint8))
    service.store.update_event(event, 5, 3, 4.0, end_time=101.0, thumbnail=f"{event}.jpg")
    service.web = WebServer(service)
    service.web.start()
    yield service, event
    service.stop()


def test_a_token_is_needed_off_loopback(tmp_path, trained_run):
    checkpoint, scene, _ = trained_run
    settings = two_cameras(checkpoint, scene, tmp_path / "serve", host="0.0.0.0")
    with pytest.raises(ConfigError, match="needs a token"):
        Service(serve_config_from_dict(settings), environ={})
    with pytest.raises(ConfigError, match="at least 16"):
        Service(serve_config_from_dict(settings), environ={"COMEMORY_TOKEN": "short"})


def test_requests_need_the_token_and_reach_files_only_by_event_id(web_service, caplog):
    service, event = web_service
    base = service.web.address
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    caplog.set_level(logging.DEBUG, logger="comemory")
    assert get(f"{base}/api/events")[0] == 401
    assert get(f"{base}/api/events", {"Authorization": "Bearer wrong"})[0] == 401
    status, body = get(f"{base}/api/events", bearer)
    assert status == 200 and json.loads(body)["events"][0]["id"] == event
    status, body = get(f"{base}/api/events/{event}/thumbnail.jpg", bearer)
    assert status == 200 and body[:2] == b"\xff\xd8"
    for path in ("/api/events/..%2F..%2Fetc%2Fpasswd/clip.webm",
                 f"/api/events/{event}/..%2F..%2Fevents.db", "/api/events/../events.db",
                 f"/api/events/{event}/clip.webm",  # the event has no clip
                 f"/api/events/{event + 1}/thumbnail.jpg", "/api/cameras/..%2F/live.jpg"):
        assert get(base + path, bearer)[0] == 404, path
    # the page's login: the token in the address becomes a cookie, then leaves the address
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    with opener.open(f"{base}/?token={TOKEN}", timeout=10) as response:
        assert response.status == 200 and response.url == f"{base}/"
        assert b"comemory" in response.read()
    with opener.open(f"{base}/api/status", timeout=10) as response:
        assert [c["name"] for c in json.loads(response.read())["cameras"]] == ["walkway",
                                                                                "street"]
    status, body = get(f"{base}/?token=wrong")
    assert status == 401 and b"not this service" in body and b'name="token"' in body
    status, body = get(f"{base}/")  # a browser without the cookie: a page that asks
    assert status == 401 and b'<form method="get" action="/">' in body
    assert TOKEN not in caplog.text and "/api/events" in caplog.text


def test_review_input_is_validated(web_service):
    service, event = web_service
    url = f"{service.web.address}/api/events/{event}/review"
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    assert post_json(url, {"verdict": "maybe"}, bearer)[0] == 400
    assert post_json(url, {"verdict": "false_alarm", "note": "x" * 3000}, bearer)[0] == 400
    assert post_json(url, {"verdict": "false_alarm", "note": 5}, bearer)[0] == 400
    assert post_json(url, b"{not json", bearer)[0] == 400
    assert post_json(url, {"verdict": "false_alarm"}, bearer, "text/plain")[0] == 400
    assert post_json(f"{service.web.address}/api/events/99999/review",
                     {"verdict": "false_alarm"}, bearer)[0] == 404
    status, answer = post_json(url, {"verdict": "false_alarm", "note": " a shadow "}, bearer)
    assert status == 200 and (answer["verdict"], answer["note"]) == ("false_alarm",
                                                                     "a shadow")
    for query in ("camera=nobody", "reviewed=perhaps", "since=soon", "limit=0",
                  "since=nan"):
        assert get(f"{service.web.address}/api/events?{query}", bearer)[0] == 400, query
    status, body = get(f"{service.web.address}/api/reviews.csv", bearer)
    assert status == 200 and b"false_alarm,a shadow" in body


# --- the page in a real browser ---------------------------------------------------------

def chromium_or_skip():
    if CHROMIUM.exists():
        return
    if os.environ.get("COMEMORY_REQUIRE_BROWSER"):
        pytest.fail(f"{CHROMIUM} is missing (CI installs Debian's chromium)")
    pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium); CI runs this test")


def test_the_page_in_chromium_shows_both_cameras_and_keeps_a_review(tmp_path, trained_run):
    chromium_or_skip()
    from playwright.sync_api import sync_playwright

    checkpoint, scene, _ = trained_run
    config = serve_config_from_dict(two_cameras(checkpoint, scene, tmp_path / "serve"))
    service = Service(config, environ={})
    service.start()
    arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=arguments)
        try:
            page = browser.new_page()
            page.goto(service.web.address)
            for name in ("walkway", "street"):  # live pictures and curves that move
                card = f".camera[data-camera='{name}']"
                page.wait_for_function(
                    f"document.querySelector(\"{card} img.live\")?.dataset.loads >= 2",
                    timeout=60_000)
                page.wait_for_function(
                    f"document.querySelector(\"{card} canvas\").dataset.last > 0",
                    timeout=30_000)
                first = int(page.get_attribute(f"{card} canvas", "data-last"))
                page.wait_for_function(
                    f"+document.querySelector(\"{card} canvas\").dataset.last > {first}",
                    timeout=30_000)
            row = "tr.event:has(td:text-is('street'))"  # the fast object's event
            page.wait_for_selector(row, timeout=90_000)
            event_id = page.get_attribute(row, "data-id")
            wait_for(lambda: service.store.event(int(event_id))["clip"], 60, "the clip")
            page.click(f"tr.event[data-id='{event_id}']")
            page.wait_for_function("isFinite(document.getElementById('clip').duration) && "
                                   "document.getElementById('clip').duration > 0",
                                   timeout=30_000)
            page.fill("#note", "the cart is allowed here")
            page.click("#mark-false")
            page.wait_for_function("document.getElementById('review-state')"
                                   ".textContent.includes('false alarm')", timeout=10_000)
            page.screenshot(path=str(tmp_path / "page.png"))
        finally:
            service.stop()
        restarted = Service(config, environ={})  # same data folder: the review is kept
        restarted.start()
        try:
            page = browser.new_page()
            page.goto(restarted.web.address)
            page.select_option("#f-reviewed", "yes")
            kept = f"tr.event[data-id='{event_id}'][data-verdict='false_alarm']"
            page.wait_for_selector(kept, timeout=30_000)
        finally:
            restarted.stop()
            browser.close()


# --- feedback: false alarms become normal footage ------------------------------------------

def test_finetune_on_a_false_alarm_lowers_its_score(tmp_path, trained_run):
    """The operator marks the fast object's event a false alarm (it is allowed here): the
    fine-tuned model scores that clip lower against its new threshold, and the old
    checkpoint is left as it was."""
    checkpoint, scene, cache = trained_run
    original = checkpoint.read_bytes()
    database = tmp_path / "serve" / "events.db"
    store = EventStore(database)
    event = store.open_event("street", 100.0, 0, 47, 20, 5.0, 2.0)
    clips = tmp_path / "serve" / "media" / "clips"
    clips.mkdir(parents=True)
    writer = cv2.VideoWriter(str(clips / "street-1.webm"), cv2.VideoWriter_fourcc(*"VP80"),
                             25.0, (64, 64))
    images = [cv2.imread(str(p)) for p in list_frames(Path(frames_folder(scene, "testing",
                                                                         FAST_VIDEO)))]
    for image in images:
        writer.write(cv2.resize(image, (64, 64)))
    writer.release()
    store.set_clip([event], "street-1.webm", (clips / "street-1.webm").stat().st_size)
    store.review(event, "false_alarm", "bikes are allowed", now=200.0)
    store.close()
    out = tmp_path / "reviewed"
    report = finetune(checkpoint, scene, database, out, epochs=2, review_share=0.5,
                      cache_dir=cache)
    verdict = report["per_event"][str(event)]
    assert report["false_alarm_events"] == [event]
    assert verdict["before"]["alarm"], "the tiny model did not flag the fast object at all"
    assert verdict["after"]["peak_margin"] < verdict["before"]["peak_margin"]
    assert report["still_alarming_after"] <= report["still_alarming_before"]
    rate = Detector.from_checkpoint(out / "checkpoint.pt").calibration.false_alarm_rate
    assert abs(report["held_out_false_alarm_rate"] - rate) < 0.05
    assert json.loads((out / "finetune.json").read_text()) == report
    assert checkpoint.read_bytes() == original
    empty = tmp_path / "empty.db"
    EventStore(empty).close()
    with pytest.raises(DataError, match="no event is marked false alarm"):
        finetune(checkpoint, scene, empty, tmp_path / "x", cache_dir=cache)
