"""Crash harness: SIGKILL install, update, uninstall and permission changes at random points.

Each kill point copies a prepared home, starts one ``kaisec`` operation as its
own process, kills it with SIGKILL after a random delay within the
operation's measured duration, runs ``kaisec doctor --json`` and checks that
every app is wholly old or wholly new, with no stray file and no orphan row.

The test suite runs 24 kill points (``tests/install/test_crash.py``); for a
long run::

    .venv/bin/python -m tests.install.crash --points 500 [--seed N]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OPS = ("install", "update", "uninstall", "perms")


@dataclass
class Fixture:
    """A prepared home (template) and the packages the operations use."""

    template: Path
    new_pkg: Path  # an app not yet installed ("Big")
    update_pkg: Path  # contacts 1.1
    durations: dict[str, float] = field(default_factory=dict)


def _kaisec(home: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "kaisec", "--home", str(home), *args]


def _op_args(op: str, fx: Fixture) -> list[str]:
    return {
        "install": ["install", str(fx.new_pkg)],
        "update": ["update", "contacts", str(fx.update_pkg)],
        "uninstall": ["uninstall", "contacts"],
        "perms": ["perms", "set", "contacts", "camera", "allow"],
    }[op]


def prepare(work: Path) -> Fixture:
    """Build the PKI, the packages and a template home with contacts 1.0 installed."""
    from kaisec.home import Home
    from kaisec.installer import Installer
    from kaisec.keys import init_dev_pki, load_certificates, load_private_key
    from kaisec.manager import PermissionManager
    from kaisec.package import pack, sign_package
    from kaisec.trust import TrustStore
    from kaisec.types import Action, AppClass

    pki = init_dev_pki(work / "keys", key_type="ec")
    key = load_private_key(pki.store_signer_key)
    chain = load_certificates(pki.store_signer_cert)
    rng = random.Random(7)

    def package(name: str, version: str, size: int) -> Path:
        src = work / f"src-{name}-{version}"
        src.mkdir()
        doc = {
            "name": name,
            "start_url": "/index.html",
            "b2g_features": {
                "version": version,
                "permissions": {
                    "contacts": {"description": "book", "access": "readwrite"},
                    "camera": {"description": "photos"},
                },
            },
        }
        (src / "manifest.webmanifest").write_text(json.dumps(doc))
        (src / "index.html").write_text("<html></html>")
        for i in range(40):  # enough bytes that each operation takes a while
            (src / f"asset{i:02d}.bin").write_bytes(rng.randbytes(size // 40))
        out = work / f"{name}-{version}.zip"
        pack(src, out)
        signed = work / f"{name}-{version}-signed.zip"
        sign_package(out, signed, key=key, cert_chain=chain)
        return signed

    home = Home(work / "template").ensure()
    TrustStore.load(home.trust_dir).add(pki.store_root, AppClass.SIGNED)
    with Installer(home) as inst:
        inst.install(package("Contacts", "1.0", 4 << 20))
    mgr = PermissionManager.open(home)
    mgr.set("http://contacts.localhost", "camera", Action.DENY)
    mgr.close()
    return Fixture(home.root, package("Big", "1.0", 8 << 20), package("Contacts", "1.1", 4 << 20))


def calibrate(fx: Fixture, work: Path) -> None:
    """How long each operation takes when it is not killed."""
    for op in OPS:
        home = work / f"calib-{op}"
        shutil.copytree(fx.template, home)
        start = time.monotonic()
        subprocess.run(_kaisec(home, *_op_args(op, fx)), check=True, capture_output=True)
        fx.durations[op] = time.monotonic() - start
        shutil.rmtree(home)


def _state(home: Path) -> dict[str, Any]:
    with sqlite3.connect(home / "kaisec.db") as db:
        apps = {
            name: {"id": i, "version": v, "digest": d}
            for i, name, v, d in db.execute("SELECT id, name, version, package_digest FROM apps")
        }
        perms = {
            (o, p): a
            for o, p, a in db.execute("SELECT origin, permission, action FROM permissions")
        }
    files = {
        d.name: sorted(f.name for f in d.iterdir())
        for d in (home / "apps").iterdir()
        if not d.name.startswith(".")
    }
    leftovers = sorted(str(p) for p in (home / "apps").glob(".*/*"))
    return {"apps": apps, "perms": perms, "files": files, "leftovers": leftovers}


def check_point(op: str, home: Path) -> list[str]:
    """Run doctor, then check that the operation is wholly done or wholly undone."""
    doctor = subprocess.run(_kaisec(home, "doctor", "--json"), capture_output=True, text=True)
    problems: list[str] = []
    try:
        report = json.loads(doctor.stdout)
    except json.JSONDecodeError:
        return [f"doctor printed no JSON (exit {doctor.returncode}): {doctor.stderr[-500:]}"]
    if doctor.returncode != 0 or not report["ok"]:
        problems.append(f"doctor: {report['problems']}")
    st = _state(home)
    if st["leftovers"]:
        problems.append(f"stray files after doctor: {st['leftovers']}")
    for name, app in st["apps"].items():
        if st["files"].get(app["id"]) != [f"{app['digest']}.zip"]:
            problems.append(f"{name}: files {st['files'].get(app['id'])} != its one package")
    ids = {a["id"] for a in st["apps"].values()}
    if set(st["files"]) != ids:
        problems.append(f"app folders {sorted(st['files'])} != app rows {sorted(ids)}")
    origins = {f"http://{n}.localhost" for n in st["apps"]}
    orphans = {o for o, _ in st["perms"] if o not in origins}
    if orphans:
        problems.append(f"orphan permission rows for {orphans}")
    contacts = st["apps"].get("contacts")
    camera = st["perms"].get(("http://contacts.localhost", "camera"))
    if op == "install":
        big = st["apps"].get("big")
        if big is not None and ("http://big.localhost", "contacts:read") not in st["perms"]:
            problems.append("big is registered without its permissions")
        if contacts is None or contacts["version"] != "1.0":
            problems.append("install touched another app")
    elif op == "update":
        if contacts is None or contacts["version"] not in ("1.0", "1.1"):
            problems.append(f"contacts is neither old nor new: {contacts}")
        if camera != "deny":
            problems.append(f"the user's camera answer changed: {camera}")
    elif op == "uninstall":
        if contacts is None and any(o == "http://contacts.localhost" for o, _ in st["perms"]):
            problems.append("contacts is gone but some of its permissions remain")
        if contacts is not None and camera != "deny":
            problems.append("contacts remains but its permissions do not")
    elif op == "perms" and camera not in ("deny", "allow"):
        problems.append(f"camera is neither old nor new: {camera}")
    return problems


def kill_point(
    fx: Fixture, work: Path, rng: random.Random, index: int
) -> tuple[str, float, list[str]]:
    """One kill point; returns the operation, the delay and the problems found."""
    op = OPS[index % len(OPS)]
    home = work / f"point-{index}"
    shutil.copytree(fx.template, home)
    delay = rng.uniform(0.0, fx.durations[op] * 1.1)
    proc = subprocess.Popen(
        _kaisec(home, *_op_args(op, fx)), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    time.sleep(delay)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    problems = check_point(op, home)
    if not problems:
        shutil.rmtree(home)
    return op, delay, problems


def run(points: int, seed: int, work: Path, log: Callable[[str], None] = print) -> list[str]:
    """Run ``points`` kill points; returns every problem found (empty: all good)."""
    fx = prepare(work)
    calibrate(fx, work)
    log(f"durations: { {k: round(v, 3) for k, v in fx.durations.items()} }")
    rng = random.Random(seed)
    failures: list[str] = []
    for i in range(points):
        op, delay, problems = kill_point(fx, work, rng, i)
        if problems:
            failures.append(f"point {i} ({op}, killed after {delay:.3f}s): {problems}")
            log(failures[-1])
    log(f"{points} kill points, {len(failures)} failed")
    return failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=500)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    args = parser.parse_args()
    print(f"seed {args.seed}")
    with tempfile.TemporaryDirectory(prefix="kaisec-crash-") as tmp:
        failures = run(args.points, args.seed, Path(tmp))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
