"""Benchmark of installing (issue 4): install vs verify, and scaling with 1,000 apps.

Measures, in one run, whole processes (start-up included):

1. ``kaisec install PKG`` vs ``kaisec verify PKG`` on a 64 MiB package of
   2,000 files (goal: install at most 1.3x verify);
2. with 1,000 apps installed: ``kaisec apps --json`` and ``kaisec check``
   (goal: each within 0.5 s);
3. library install and uninstall of one more app with 10 and with 1,000
   apps installed (goal: no growth).

Results: ``bench/results/install.json`` and the "Install (issue 4)" section
of ``docs/benchmarks.md``. Run: ``.venv/bin/python bench/bench_install.py [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "install.json"
DOCS = ROOT / "docs" / "benchmarks.md"
SECTION = "## Install (issue 4)"


def kaisec(home: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "kaisec", "--home", str(home), *args]


def timed(cmd: list[str], runs: int, setup: Any = None) -> list[float]:
    out = []
    for _ in range(runs):
        if setup is not None:
            setup()
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        out.append(time.perf_counter() - start)
    return out


def make_package(work: Path, name: str, files: int, total: int, key: Any, chain: Any) -> Path:
    from kaisec.package import pack, sign_package

    rng = random.Random(name)
    src = work / f"src-{name}"
    src.mkdir()
    doc = {
        "name": name,
        "start_url": "/index.html",
        "b2g_features": {
            "version": "1.0",
            "permissions": {"camera": {"description": "photos"}},
        },
    }
    (src / "manifest.webmanifest").write_text(json.dumps(doc))
    each = max(total // files, 1)
    words = [rng.randbytes(8).hex().encode() for _ in range(512)]
    for i in range(files):
        sub = src / f"d{i % 20:02d}"
        sub.mkdir(exist_ok=True)
        # half incompressible, half text-like
        text = b" ".join(rng.choices(words, k=each // 16))[:each]
        data = rng.randbytes(each) if i % 2 else text
        (sub / f"f{i:04d}.bin").write_bytes(data)
    out = work / f"{name}.zip"
    pack(src, out)
    signed = work / f"{name}-signed.zip"
    sign_package(out, signed, key=key, cert_chain=chain)
    shutil.rmtree(src)
    return signed


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="200 apps instead of 1,000")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    n_apps = 200 if args.quick else 1000

    from kaisec.home import Home
    from kaisec.installer import Installer
    from kaisec.keys import init_dev_pki, load_certificates, load_private_key
    from kaisec.trust import TrustStore
    from kaisec.types import AppClass

    with tempfile.TemporaryDirectory(prefix="kaisec-bench-install-") as tmp:
        work = Path(tmp)
        pki = init_dev_pki(work / "keys", key_type="ec")
        key = load_private_key(pki.store_signer_key)
        chain = load_certificates(pki.store_signer_cert)
        trust = work / "trust"
        TrustStore.load(trust).add(pki.store_root, AppClass.SIGNED)
        big = make_package(work, "Big", 2000, 64 << 20, key, chain)
        small = make_package(work, "Small", 5, 20_000, key, chain)

        # 1. install vs verify, whole process
        template = Home(work / "template").ensure()
        shutil.copytree(trust, template.trust_dir)
        subprocess.run(kaisec(template.root, "apps", "--json"), check=True, capture_output=True)
        scratch = work / "scratch"

        def fresh() -> None:
            shutil.rmtree(scratch, ignore_errors=True)
            shutil.copytree(template.root, scratch)

        verify = timed(kaisec(template.root, "verify", str(big), "--trust", str(trust)), args.runs)
        install = timed(kaisec(scratch, "install", str(big)), args.runs, setup=fresh)

        # 2. and 3. many apps
        home = Home(work / "many").ensure()
        shutil.copytree(trust, home.trust_dir)
        lib: dict[str, dict[str, float]] = {}
        with Installer(home) as inst:

            def one_more() -> tuple[float, float]:
                t0 = time.perf_counter()
                rec = inst.install(small).app
                t1 = time.perf_counter()
                inst.uninstall(rec.id)
                return t1 - t0, time.perf_counter() - t1

            for _ in range(10):
                inst.install(small)
            at10 = [one_more() for _ in range(args.runs * 2)]
            start = time.perf_counter()
            for _ in range(n_apps - 10):
                inst.install(small)
            fill = time.perf_counter() - start
            atn = [one_more() for _ in range(args.runs * 2)]
            for label, samples in (("10", at10), (str(n_apps), atn)):
                lib[label] = {
                    "install_ms": round(statistics.median(s[0] for s in samples) * 1000, 1),
                    "uninstall_ms": round(statistics.median(s[1] for s in samples) * 1000, 1),
                }
        apps = timed(kaisec(home.root, "apps", "--json"), args.runs)
        check = timed(
            kaisec(home.root, "check", "small-500" if n_apps >= 500 else "small", "camera"),
            args.runs,
        )

    med = statistics.median
    result = {
        "machine": f"{platform.machine()}, Python {platform.python_version()}",
        "package": "64 MiB, 2,000 files",
        "verify_s": round(med(verify), 3),
        "install_s": round(med(install), 3),
        "install_over_verify": round(med(install) / med(verify), 2),
        "apps": n_apps,
        "fill_s": round(fill, 1),
        "apps_json_s": round(med(apps), 3),
        "check_s": round(med(check), 3),
        "library": lib,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    table = "\n".join(
        [
            SECTION,
            "",
            f"`bench/bench_install.py` ({result['machine']}; medians of {args.runs} runs, "
            "whole processes unless noted).",
            "",
            "| measurement | result | goal |",
            "|---|---|---|",
            f"| `kaisec verify` 64 MiB / 2,000 files | {result['verify_s']} s | |",
            f"| `kaisec install` same package | {result['install_s']} s "
            f"({result['install_over_verify']}x verify) | at most 1.3x verify |",
            f"| `kaisec apps --json`, {n_apps} apps | {result['apps_json_s']} s | within 0.5 s |",
            f"| `kaisec check`, {n_apps} apps | {result['check_s']} s | within 0.5 s |",
            f"| library install / uninstall, 10 apps | {lib['10']['install_ms']} / "
            f"{lib['10']['uninstall_ms']} ms | flat |",
            f"| library install / uninstall, {n_apps} apps | {lib[str(n_apps)]['install_ms']} / "
            f"{lib[str(n_apps)]['uninstall_ms']} ms | flat |",
            "",
        ]
    )
    print(table)
    text = DOCS.read_text() if DOCS.exists() else "# Benchmarks\n"
    pattern = re.compile(re.escape(SECTION) + r"\n.*?(?=\n## |\Z)", re.S)
    text = (
        pattern.sub(table.rstrip("\n"), text)
        if SECTION in text
        else text.rstrip("\n") + "\n\n" + table
    )
    DOCS.write_text(text.rstrip("\n") + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
