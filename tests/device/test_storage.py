"""Device storage: names, areas, limits, owner isolation, persistence, crash safety."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from kaisec.device import AREAS, Device, DeviceConfig, FileInfo, open_device
from kaisec.errors import DeviceError
from kaisec.home import Home

A = "http://a.localhost"
B = "http://b.localhost"


def reason(exc: pytest.ExceptionInfo[DeviceError]) -> str:
    return str(exc.value.details["reason"])


def blobs(home: Home) -> list[str]:
    return sorted(os.listdir(home.storage_dir / "blobs"))


def test_add_get_list_delete(dev: Device, home: Home, events: Any) -> None:
    info = dev.storage.add("pictures", "cat.png", b"\x89PNG...", owner=A)
    assert info == FileInfo(
        "pictures",
        "cat.png",
        7,
        "image/png",
        hashlib.sha256(b"\x89PNG...").hexdigest(),
        info.created,
    )
    assert "path" not in info.to_dict() and str(home.root) not in repr(info.to_dict())
    assert dev.storage.get("pictures", "cat.png", owner=A) == (info, b"\x89PNG...")
    assert dev.storage.list("pictures", owner=A) == [info]
    assert dev.storage.list("music", owner=A) == []
    dev.storage.delete("pictures", "cat.png", owner=A)
    assert dev.storage.list("pictures", owner=A) == []
    assert blobs(home) == []
    got = [(e.service, e.name, e.owner, e.data) for e in events.drain()]
    assert got == [
        ("storage", "change", A, {"area": "pictures", "name": "cat.png", "reason": "created"}),
        ("storage", "change", A, {"area": "pictures", "name": "cat.png", "reason": "deleted"}),
    ]


def test_every_area_and_mime(dev: Device) -> None:
    assert (
        AREAS == dev.storage.AREAS == ("pictures", "music", "videos", "sdcard", "apps", "crashes")
    )
    for area in AREAS:
        dev.storage.add(area, "f", b"x", owner=A)
    assert dev.storage.add("sdcard", "a.txt", b"", owner=A).mime == "text/plain"
    assert dev.storage.add("sdcard", "noext", b"", owner=A).mime == "application/octet-stream"
    assert dev.storage.add("sdcard", "x.bin", b"", owner=A, mime="Image/JPEG").mime == "image/jpeg"
    assert dev.storage.get("sdcard", "a.txt", owner=A)[1] == b""


def test_owner_isolation_same_area_and_name(dev: Device) -> None:
    a = dev.storage.add("pictures", "same.jpg", b"from A", owner=A)
    with pytest.raises(DeviceError) as exc:
        dev.storage.get("pictures", "same.jpg", owner=B)
    assert reason(exc) == "NOT_FOUND"
    assert dev.storage.list("pictures", owner=B) == []
    with pytest.raises(DeviceError) as exc:
        dev.storage.delete("pictures", "same.jpg", owner=B)
    assert reason(exc) == "NOT_FOUND"
    # B may hold its own file of that name; neither sees the other's bytes.
    dev.storage.add("pictures", "same.jpg", b"from B", owner=B)
    assert dev.storage.get("pictures", "same.jpg", owner=A) == (a, b"from A")
    assert dev.storage.get("pictures", "same.jpg", owner=B)[1] == b"from B"
    dev.storage.delete("pictures", "same.jpg", owner=B)
    assert dev.storage.get("pictures", "same.jpg", owner=A)[1] == b"from A"


def test_remove_owner_removes_every_file_of_that_owner_only(dev: Device, home: Home) -> None:
    for area in ("pictures", "music", "apps"):
        dev.storage.add(area, "f", area.encode(), owner=A)
    dev.storage.add("pictures", "f", b"b", owner=B)
    assert len(blobs(home)) == 4
    dev.storage.remove_owner(A)
    assert all(dev.storage.list(area, owner=A) == [] for area in AREAS)
    assert dev.storage.get("pictures", "f", owner=B)[1] == b"b"
    assert len(blobs(home)) == 1
    dev.storage.remove_owner("http://nobody.localhost")  # nothing to do is fine


@pytest.mark.parametrize(
    "name",
    [
        "",
        ".",
        "..",
        "a/b",
        "../x",
        "a\\b",
        "nul\x00",
        "tab\tname",
        "line\nbreak",
        "del\x7f",
        "c1\x85",
        "x" * 256,
        "bidi\u202egnp.exe",
        "iso\u2066x",
        "ls\u2028x",
        "lone\ud800",
        None,
        b"bytes",
    ],
    ids=repr,
)
def test_bad_names(shared_dev: Device, name: Any) -> None:
    for call in (
        lambda: shared_dev.storage.add("pictures", name, b"x", owner=A),
        lambda: shared_dev.storage.get("pictures", name, owner=A),
        lambda: shared_dev.storage.delete("pictures", name, owner=A),
    ):
        with pytest.raises(DeviceError) as exc:
            call()
        assert reason(exc) == "BAD_NAME"


@pytest.mark.parametrize("name", ["a", "x" * 255, "..a", "a..", ".hidden", "é café 🎉.png", "a b"])
def test_good_names(shared_dev: Device, name: str) -> None:
    shared_dev.storage.add("sdcard", name, b"1", owner=A)
    assert shared_dev.storage.get("sdcard", name, owner=A)[1] == b"1"


@pytest.mark.parametrize("area", ["", "Pictures", "pictures/..", "system", "../apps", None])
def test_bad_area(shared_dev: Device, area: Any) -> None:
    for call in (
        lambda: shared_dev.storage.add(area, "f", b"x", owner=A),
        lambda: shared_dev.storage.get(area, "f", owner=A),
        lambda: shared_dev.storage.list(area, owner=A),
        lambda: shared_dev.storage.delete(area, "f", owner=A),
    ):
        with pytest.raises(DeviceError) as exc:
            call()
        assert reason(exc) == "BAD_AREA"


@pytest.mark.parametrize("mime", ["", "image", "image/", "/png", "a b/c", "text/plain; x=1", 5])
def test_bad_mime(shared_dev: Device, mime: Any) -> None:
    with pytest.raises(DeviceError) as exc:
        shared_dev.storage.add("sdcard", "f", b"", owner=A, mime=mime)
    assert reason(exc) == "BAD_MIME"


def test_exists_and_not_found(dev: Device) -> None:
    dev.storage.add("music", "song.mp3", b"1", owner=A)
    with pytest.raises(DeviceError) as exc:
        dev.storage.add("music", "song.mp3", b"2", owner=A)
    assert reason(exc) == "EXISTS"
    assert dev.storage.get("music", "song.mp3", owner=A)[1] == b"1"
    with pytest.raises(DeviceError) as exc:
        dev.storage.get("music", "other.mp3", owner=A)
    assert reason(exc) == "NOT_FOUND"
    with pytest.raises(DeviceError) as exc:
        dev.storage.delete("music", "other.mp3", owner=A)
    assert reason(exc) == "NOT_FOUND"


def test_data_must_be_bytes(dev: Device) -> None:
    with pytest.raises(ValueError):
        dev.storage.add("sdcard", "f", "text", owner=A)  # type: ignore[arg-type]
    assert dev.storage.add("sdcard", "g", bytearray(b"ok"), owner=A).size == 2


def test_too_large_and_quotas(home: Home) -> None:
    config = DeviceConfig(max_file_size=10, storage_quota=25, max_items=3)
    with open_device(home, config=config) as dev:
        dev.storage.add("sdcard", "ten", b"x" * 10, owner=A)
        with pytest.raises(DeviceError) as exc:
            dev.storage.add("sdcard", "eleven", b"x" * 11, owner=A)
        assert reason(exc) == "TOO_LARGE"
        dev.storage.add("music", "ten", b"x" * 10, owner=A)
        with pytest.raises(DeviceError) as exc:
            dev.storage.add("videos", "six", b"x" * 6, owner=A)
        assert reason(exc) == "QUOTA"
        dev.storage.add("videos", "five", b"x" * 5, owner=A)
        with pytest.raises(DeviceError) as exc:
            dev.storage.add("videos", "zero", b"", owner=A)
        assert reason(exc) == "QUOTA"  # max_items files
        dev.storage.add("videos", "other", b"x" * 10, owner=B)  # quotas are per owner
        assert len(blobs(home)) == 4  # refusals left no blob behind


def test_persistence_across_reopen(dev: Device, reopen: Any) -> None:
    info = dev.storage.add("pictures", "keep.png", b"keep me", owner=A)
    dev2 = reopen(dev)
    assert dev2.storage.get("pictures", "keep.png", owner=A) == (info, b"keep me")


def test_corrupt_blob_is_detected(dev: Device, home: Home) -> None:
    dev.storage.add("sdcard", "f", b"original", owner=A)
    [blob] = blobs(home)
    (home.storage_dir / "blobs" / blob).write_bytes(b"tampered")
    with pytest.raises(DeviceError) as exc:
        dev.storage.get("sdcard", "f", owner=A)
    assert reason(exc) == "CORRUPT"
    (home.storage_dir / "blobs" / blob).unlink()
    with pytest.raises(DeviceError) as exc:
        dev.storage.get("sdcard", "f", owner=A)
    assert reason(exc) == "CORRUPT"


def test_crash_between_blob_and_row_leaves_an_orphan_that_cleanup_removes(
    dev: Device, home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    dev.storage.add("sdcard", "kept", b"kept", owner=A)

    def crash(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt  # like a kill between the fsync and the commit

    # The failing add cleans up after itself...
    monkeypatch.setattr(dev.storage, "_check_room", lambda *a: None)
    monkeypatch.setattr("kaisec.device._db.DeviceDB.transaction", crash)
    with pytest.raises(KeyboardInterrupt):
        dev.storage.add("sdcard", "lost", b"lost", owner=A)
    monkeypatch.undo()
    assert len(blobs(home)) == 1
    # ...but a real crash cannot: leave orphans as a killed process would.
    blob_dir = home.storage_dir / "blobs"
    (blob_dir / ("ab" * 16)).write_bytes(b"orphan")
    (blob_dir / "partial-write").write_bytes(b"junk")
    assert dev.storage.cleanup() == 0  # too fresh: another process may be committing it
    assert dev.storage.cleanup(min_age=0) == 2
    assert len(blobs(home)) == 1
    assert dev.storage.get("sdcard", "kept", owner=A)[1] == b"kept"


def test_orphans_are_removed_when_the_device_opens_alone(
    dev: Device, home: Home, reopen: Any
) -> None:
    dev.storage.add("sdcard", "kept", b"kept", owner=A)
    (home.storage_dir / "blobs" / ("cd" * 16)).write_bytes(b"orphan")
    dev2 = reopen(dev)
    assert len(blobs(home)) == 1
    assert dev2.storage.get("sdcard", "kept", owner=A)[1] == b"kept"


def test_orphans_are_kept_while_another_device_is_open(dev: Device, home: Home) -> None:
    (home.storage_dir / "blobs" / ("cd" * 16)).write_bytes(b"maybe someone's")
    with open_device(home):
        assert len(blobs(home)) == 1


def test_cleanup_spares_a_blob_being_written(
    dev: Device, home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kaisec.device.storage import SimStorage

    seen: list[int] = []
    original = SimStorage._write_blob

    def write_then_cleanup(self: SimStorage, blob: str, data: bytes) -> None:
        original(self, blob, data)
        seen.append(self.cleanup(min_age=0))

    monkeypatch.setattr(SimStorage, "_write_blob", write_then_cleanup)
    dev.storage.add("sdcard", "f", b"data", owner=A)
    assert seen == [0]
    assert dev.storage.get("sdcard", "f", owner=A)[1] == b"data"


def test_blob_and_database_modes(dev: Device, home: Home) -> None:
    dev.storage.add("sdcard", "f", b"x", owner=A)
    [blob] = blobs(home)
    assert (home.storage_dir / "blobs" / blob).stat().st_mode & 0o777 == 0o600
    assert (home.storage_dir / "blobs").stat().st_mode & 0o777 == 0o700
    assert (home.storage_dir / "device.db").stat().st_mode & 0o077 == 0
    con = sqlite3.connect(home.storage_dir / "device.db")
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    row = con.execute(
        "SELECT owner, area, name, blob, size, mime, sha256, created FROM files"
    ).fetchone()
    con.close()
    assert row[:3] == (A, "sdcard", "f") and row[3] == blob and row[4] == 1


def test_concurrent_adds(dev: Device, home: Home) -> None:
    errors: list[BaseException] = []

    def worker(owner: str, n: int) -> None:
        try:
            for i in range(10):
                dev.storage.add("sdcard", f"f{i}", f"{owner}{n}{i}".encode(), owner=f"{owner}{n}")
            # Every thread also races the others for one shared name.
            try:
                dev.storage.add("sdcard", "race", b"r", owner=owner)
            except DeviceError as exc:
                assert exc.details["reason"] == "EXISTS"
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(o, n)) for o in (A, B) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for o in (A, B):
        for n in range(4):
            files = dev.storage.list("sdcard", owner=f"{o}{n}")
            assert [f.name for f in files] == [f"f{i}" for i in range(10)]
        assert [f.name for f in dev.storage.list("sdcard", owner=o)] == ["race"]
    assert len(blobs(home)) == 82  # no orphan from the lost races


def test_host_path_never_leaks(dev: Device, home: Home) -> None:
    info = dev.storage.add("apps", "x", b"1", owner=A)
    assert not any(
        isinstance(v, str) and os.sep in v and Path(v).exists() for v in info.to_dict().values()
    )
