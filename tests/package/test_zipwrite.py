"""write_zip and collect_app_files: deterministic, readable everywhere, refusing unsafe input."""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import zipfile
from pathlib import Path

import pytest

from kaisec._internal import zipwrite
from kaisec._internal.zipsafe import SafeZipReader
from kaisec._internal.zipwrite import FIXED_DATE_TIME, collect_app_files, write_zip
from kaisec.errors import DuplicateEntryError, UnsafePathError

FILES = {
    "manifest.webapp": b'{"name": "demo", "launch_path": "/index.html"}',
    "index.html": b"<!doctype html><title>demo</title>" + b"<p>hello</p>" * 300,
    "js/app.js": b"console.log('hi');\n" * 200,
    "img/logo.bin": os.urandom(4096),  # incompressible: stored even with compress=True
    "empty.txt": b"",
    "l10n/é.json": b"{}",
}


def make_app(root: Path, files: dict[str, bytes] = FILES) -> Path:
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def read_back(data: bytes) -> dict[str, bytes]:
    with SafeZipReader(io.BytesIO(data)) as reader:
        return {e.name: reader.read(e, max_size=1 << 24) for e in reader.entries}


def pack(src: Path, out: Path, **kw: bool) -> bytes:
    write_zip(out, collect_app_files(src), **kw)
    return out.read_bytes()


# --- write_zip ----------------------------------------------------------------


def test_round_trip_through_both_readers(tmp_path: Path) -> None:
    data = pack(make_app(tmp_path / "app"), tmp_path / "a.zip")
    assert read_back(data) == FILES
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.testzip() is None
        assert {i.filename: zf.read(i) for i in zf.infolist()} == FILES


def test_entries_in_given_order_with_fixed_metadata(tmp_path: Path) -> None:
    data = pack(make_app(tmp_path / "app"), tmp_path / "a.zip")
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        infos = zf.infolist()
        assert [i.filename for i in infos] == sorted(FILES)
        for info in infos:
            assert info.date_time == FIXED_DATE_TIME
            assert info.external_attr >> 16 == 0o100644
            assert info.create_system == 3
            assert info.extra == b""
            assert info.comment == b""
            assert bool(info.flag_bits & 0x800) == (not info.filename.isascii())
            assert not info.flag_bits & 0x08  # no data descriptors
        methods = {i.filename: i.compress_type for i in infos}
    assert methods["index.html"] == zipfile.ZIP_DEFLATED
    assert methods["img/logo.bin"] == zipfile.ZIP_STORED  # deflate would not shrink it
    assert methods["empty.txt"] == zipfile.ZIP_STORED


def test_deterministic_across_mtimes_modes_and_umask(tmp_path: Path) -> None:
    first = pack(make_app(tmp_path / "one"), tmp_path / "one.zip")
    old = os.umask(0o077)
    try:
        src = make_app(tmp_path / "two")
        for i, path in enumerate(sorted(src.rglob("*"))):
            os.utime(path, (1_000_000 + i, 2_000_000_000 + i * 7))
            if path.is_file():
                path.chmod(0o600 if i % 2 else 0o755)
        second = pack(src, tmp_path / "two.zip")
    finally:
        os.umask(old)
    assert first == second


def test_compress_false_stores_everything(tmp_path: Path) -> None:
    data = pack(make_app(tmp_path / "app"), tmp_path / "a.zip", compress=False)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert {i.compress_type for i in zf.infolist()} == {zipfile.ZIP_STORED}
    assert read_back(data) == FILES


def test_bytes_and_paths_mix_and_file_object_output(tmp_path: Path) -> None:
    (tmp_path / "b.txt").write_bytes(b"from disk" * 50)
    buf = io.BytesIO()
    write_zip(buf, [("a.txt", b"in memory"), ("b.txt", tmp_path / "b.txt"), ("d/", b"")])
    got = read_back(buf.getvalue())
    assert got == {"a.txt": b"in memory", "b.txt": b"from disk" * 50, "d/": b""}
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as zf:
        assert zf.getinfo("d/").is_dir()


def test_unzip_accepts_it_if_installed(tmp_path: Path) -> None:
    unzip = shutil.which("unzip")
    if unzip is None:
        pytest.skip("unzip not installed; zipfile.testzip covers the format")
    pack(make_app(tmp_path / "app"), tmp_path / "a.zip")
    result = subprocess.run([unzip, "-t", str(tmp_path / "a.zip")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_zip64_records_when_needed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Lower the thresholds so small files take every ZIP64 path.
    monkeypatch.setattr(zipwrite, "_ZIP64_LIMIT", 100)
    monkeypatch.setattr(zipwrite, "_ZIP64_COUNT_LIMIT", 3)
    files = [("a", b"x" * 500), ("b", os.urandom(300)), ("c", b"small"), ("d", b"y" * 1000)]
    buf = io.BytesIO()
    write_zip(buf, files)
    data = buf.getvalue()
    assert b"PK\x06\x06" in data and b"PK\x06\x07" in data
    assert read_back(data) == dict(files)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.testzip() is None
    if shutil.which("unzip"):
        (tmp_path / "z.zip").write_bytes(data)
        assert subprocess.run(["unzip", "-tq", str(tmp_path / "z.zip")]).returncode == 0


@pytest.mark.parametrize("name", ["../x", "/abs", "a\\b", "C:x", "a//b", "", "a\0"])
def test_refuses_unsafe_names(name: str) -> None:
    with pytest.raises(UnsafePathError):
        write_zip(io.BytesIO(), [(name, b"x")])


def test_refuses_duplicates_and_collisions() -> None:
    with pytest.raises(DuplicateEntryError):
        write_zip(io.BytesIO(), [("a", b"1"), ("a", b"2")])
    with pytest.raises(UnsafePathError):
        write_zip(io.BytesIO(), [("A", b"1"), ("a", b"2")])
    with pytest.raises(UnsafePathError):
        write_zip(io.BytesIO(), [("a", b"1"), ("a/b", b"2")])


def test_directory_entry_must_be_empty() -> None:
    with pytest.raises(ValueError):
        write_zip(io.BytesIO(), [("d/", b"x")])


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out.zip"
    with pytest.raises(FileNotFoundError):
        write_zip(out, [("a", b"x"), ("b", tmp_path / "missing")])
    assert list(tmp_path.iterdir()) == []


def test_replaces_existing_output_atomically(tmp_path: Path) -> None:
    out = tmp_path / "out.zip"
    out.write_bytes(b"old")
    write_zip(out, [("a", b"new")])
    assert read_back(out.read_bytes()) == {"a": b"new"}
    assert [p.name for p in tmp_path.iterdir()] == ["out.zip"]


def test_source_swapped_for_symlink_is_refused(tmp_path: Path) -> None:
    (tmp_path / "secret").write_bytes(b"secret")
    (tmp_path / "link").symlink_to(tmp_path / "secret")
    with pytest.raises(UnsafePathError):
        write_zip(io.BytesIO(), [("a", tmp_path / "link")])


def test_source_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(UnsafePathError):
        write_zip(io.BytesIO(), [("a", tmp_path / "fifo")])


def test_large_file_streams_through_spool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(zipwrite, "_SPOOL_MAX", 1024)  # force the temporary-file path
    big = tmp_path / "big"
    big.write_bytes(os.urandom(1_000_000).hex().encode())  # deflates ~2:1
    buf = io.BytesIO()
    write_zip(buf, [("big", big)])
    assert read_back(buf.getvalue()) == {"big": big.read_bytes()}


# --- collect_app_files --------------------------------------------------------


def test_collect_sorted_posix_names(tmp_path: Path) -> None:
    src = make_app(tmp_path / "app", {**FILES, "a.txt": b"", "a/b": b"", "a-b": b""})
    got = collect_app_files(src)
    names = [name for name, _ in got]
    assert names == sorted(names)
    assert names.index("a-b") < names.index("a.txt") < names.index("a/b")
    assert all(path == src / name for name, path in got)
    assert "l10n/é.json" in names


def test_collect_skips_vcs_dirs_only(tmp_path: Path) -> None:
    src = make_app(tmp_path / "app", {"index.html": b"x", ".git/config": b"x",
                                      "sub/.svn/entries": b"x", ".hg/store": b"x",
                                      ".well-known/a": b"x", ".gitignore": b"x"})  # fmt: skip
    names = [name for name, _ in collect_app_files(src)]
    assert names == [".gitignore", ".well-known/a", "index.html"]


def test_collect_ignores_empty_dirs(tmp_path: Path) -> None:
    src = make_app(tmp_path / "app", {"a": b"x"})
    (src / "empty").mkdir()
    assert [n for n, _ in collect_app_files(src)] == ["a"]


def test_collect_refuses_file_symlink(tmp_path: Path) -> None:
    src = make_app(tmp_path / "app", {"a": b"x"})
    (src / "passwd").symlink_to("/etc/passwd")
    with pytest.raises(UnsafePathError, match="symlink"):
        collect_app_files(src)


def test_collect_refuses_dir_symlink(tmp_path: Path) -> None:
    src = make_app(tmp_path / "app", {"a": b"x"})
    (src / "etc").symlink_to("/etc", target_is_directory=True)
    with pytest.raises(UnsafePathError, match="symlink"):
        collect_app_files(src)


def test_collect_refuses_dangling_symlink(tmp_path: Path) -> None:
    src = make_app(tmp_path / "app", {"a": b"x"})
    (src / "gone").symlink_to(tmp_path / "nowhere")
    with pytest.raises(UnsafePathError):
        collect_app_files(src)


def test_collect_refuses_fifo(tmp_path: Path) -> None:
    src = make_app(tmp_path / "app", {"a": b"x"})
    os.mkfifo(src / "pipe")
    with pytest.raises(UnsafePathError, match="regular"):
        collect_app_files(src)


def test_collect_refuses_socket(tmp_path: Path) -> None:
    src = make_app(tmp_path / "app", {"a": b"x"})
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(src / "s"))
    except OSError:
        pytest.skip("cannot bind a unix socket here")
    try:
        with pytest.raises(UnsafePathError):
            collect_app_files(src)
    finally:
        sock.close()


@pytest.mark.parametrize("name", ["a\\b", "c:d", "tab\there", "x\x7f"])
def test_collect_refuses_unsafe_file_names(tmp_path: Path, name: str) -> None:
    src = make_app(tmp_path / "app", {"ok": b"x"})
    (src / name).write_bytes(b"x")
    with pytest.raises(UnsafePathError):
        collect_app_files(src)


def test_collect_refuses_case_collisions(tmp_path: Path) -> None:
    src = make_app(tmp_path / "app", {"Index.html": b"1", "index.html": b"2"})
    if len(list(src.iterdir())) < 2:
        pytest.skip("case-insensitive file system")
    with pytest.raises(UnsafePathError):
        collect_app_files(src)


def test_collect_refuses_undecodable_names(tmp_path: Path) -> None:
    src = make_app(tmp_path / "app", {"ok": b"x"})
    try:
        fd = os.open(os.fsencode(src) + b"/bad\xff", os.O_WRONLY | os.O_CREAT, 0o644)
        os.close(fd)
    except OSError:
        pytest.skip("file system refuses non-UTF-8 names")
    with pytest.raises(UnsafePathError):
        collect_app_files(src)


def test_collect_requires_a_folder(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x")
    with pytest.raises(NotADirectoryError):
        collect_app_files(tmp_path / "f")
