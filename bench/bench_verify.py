"""Benchmark: ``kaisec verify`` vs ``jarsigner -verify`` vs ``apksigner verify`` vs the floor.

Run from the repository root::

    .venv/bin/python bench/bench_verify.py                 # 64 MiB then 512 MiB, 2,000 files
    .venv/bin/python bench/bench_verify.py --quick         # 64 MiB only
    .venv/bin/python bench/bench_verify.py --keep /tmp/kb  # keep (and reuse) the packages

Each tool runs as a whole process (start-up counts) on the same signed
package, built in a temporary folder (never committed): app-like content,
half the files text (JS-like, deflates ~3x), half incompressible (images),
packed and signed by kaisec with an RSA 3072 development key whose chain
(signer, root) is in the block. Every run must succeed (exit 0): a tool that
fails stops the benchmark. The tools run round-robin, one warm-up round then
``--runs`` timed rounds, so the page cache is warm for everyone and load
changes hit all alike. Reported: median wall time, median CPU time (user +
system: what a busy machine makes visible) and the peak RSS of the process
tree (GNU time).

* kaisec: ``.venv/bin/kaisec verify --trust T PKG`` with its bytecode
  compiled first (an installed package has it; the dev environment sets
  PYTHONDONTWRITEBYTECODE, which would make every run recompile kaisec).
* jarsigner: ``-verify -strict -keystore ts.p12`` (PKCS#12 truststore with the
  root: the same chain checks as kaisec).
* apksigner: ``verify --min-sdk-version 19 --max-sdk-version 23`` (the JAR
  signature only).
* For both JVM tools, default flags and start-up flags (``-XX:TieredStopAtLevel=1
  -XX:+UseSerialGC``) are measured; the faster is reported.
* floor: ``FLOOR`` below, the least any verifier in Python must do: open the
  ZIP with ``zipfile``, inflate and SHA-256 every entry once, one thread.

Writes ``bench/results/verify.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
VENV_BIN = Path(sys.executable).parent
KAISEC = VENV_BIN / "kaisec"
RESULTS = ROOT / "bench" / "results" / "verify.json"
STOREPASS = "benchpass"
FAST_JVM = {
    "jarsigner": ["-J-XX:TieredStopAtLevel=1", "-J-XX:+UseSerialGC"],
    "apksigner": ["-JXX:TieredStopAtLevel=1", "-JXX:+UseSerialGC"],  # its script adds the dash
}

FLOOR = """\
import hashlib, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as zf:
    for info in zf.infolist():
        h = hashlib.sha256()
        with zf.open(info) as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
"""

_VOCABULARY = (
    "function return const let var if else for while this that window document element "
    "addEventListener querySelector style class div span button input value length push map "
    "filter reduce Promise async await fetch then catch navigator mozApps settings <div </div> "
    "<span> </span> color: #333; margin: 0 auto; padding: 4px;"
)
_WORDS = _VOCABULARY.split()


def _text(rng: random.Random, size: int) -> bytes:
    out = bytearray()
    while len(out) < size:
        out += (" ".join(rng.choices(_WORDS, k=12)) + f" {rng.randrange(1 << 30)};\n").encode()
    return bytes(out[:size])


def build_app(folder: Path, *, files: int, target: int, seed: int = 7) -> None:
    """An app folder of ``files`` files whose package is about ``target`` bytes."""
    rng = random.Random(seed)
    folder.mkdir(parents=True)
    manifest = {"name": "Bench", "start_url": "/index.html", "b2g_features": {"version": "1.0"}}
    (folder / "manifest.webmanifest").write_text(json.dumps(manifest))
    (folder / "index.html").write_text("<!doctype html><title>bench</title>")
    weights = [rng.lognormvariate(0, 1.2) for _ in range(files - 2)]
    scale = 1.12 * target / sum(weights)  # calibrated: the text deflates a bit more than 3x
    corpus = _text(rng, 4 << 20)
    for i, weight in enumerate(weights):
        compressed = max(256, int(weight * scale))
        sub = folder / f"d{i % 40:02d}"
        sub.mkdir(exist_ok=True)
        if i % 2:
            (sub / f"img{i:05d}.png").write_bytes(rng.randbytes(compressed))
        else:
            size = compressed * 3  # the text deflates about 3x
            start = rng.randrange(len(corpus))
            data = (corpus[start:] + corpus) * (1 + size // len(corpus))
            (sub / f"mod{i:05d}.js").write_bytes(data[:size])


def prepare(work: Path) -> tuple[Path, Path, Path]:
    """A development PKI, a kaisec trust directory and a PKCS#12 truststore (reused if present)."""
    from kaisec.keys import init_dev_pki

    keys = work / "keys"
    if not (keys / "store-signer.key").exists():
        init_dev_pki(keys, key_type="rsa")
    trust = work / "trust"
    (trust / "signed").mkdir(parents=True, exist_ok=True)
    shutil.copy(keys / "store-root.pem", trust / "signed" / "root.pem")
    store = work / "ts.p12"
    if not store.exists():
        subprocess.run(
            ["keytool", "-importcert", "-noprompt", "-alias", "root",
             "-file", str(keys / "store-root.pem"), "-keystore", str(store),
             "-storetype", "PKCS12", "-storepass", STOREPASS],
            check=True, capture_output=True,
        )  # fmt: skip
    return keys, trust, store


def package(work: Path, keys: Path, *, label: str, files: int, target: int) -> Path:
    """The signed benchmark package (built once, reused with --keep)."""
    from kaisec.keys import load_certificates, load_private_key
    from kaisec.package import pack, sign_package

    signed = work / f"{label}-signed.zip"
    if signed.exists():
        return signed
    print(f"building the {label} package ({files} files)...", file=sys.stderr)
    app = work / f"app-{label}"
    shutil.rmtree(app, ignore_errors=True)
    build_app(app, files=files, target=target)
    unsigned = pack(app, work / f"{label}.zip")
    sign_package(
        unsigned,
        signed,
        key=load_private_key(keys / "store-signer.key"),
        cert_chain=load_certificates(keys / "store-signer.pem"),
    )
    shutil.rmtree(app)
    unsigned.unlink()
    return signed


def run_reaped(cmd: list[str], env: dict[str, str]) -> tuple[float, int, float]:
    """Wall seconds, peak RSS bytes and CPU seconds of one whole-process run, which must succeed.

    Peak RSS and CPU (user + system) come from GNU time (the child's ``wait4``
    rusage, process tree included): measured from this process, a forked
    child would count this process's own memory before its ``exec``.
    """
    with tempfile.NamedTemporaryFile("r") as usage, tempfile.TemporaryFile() as out:
        timed = ["/usr/bin/time", "-f", "%M %U %S", "-o", usage.name, *cmd]
        start = time.perf_counter()
        proc = subprocess.run(timed, stdout=out, stderr=out, env=env, check=False)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            out.seek(0)
            raise SystemExit(
                f"benchmark command failed ({proc.returncode}): {' '.join(cmd)}\n"
                f"{out.read().decode(errors='replace')}"
            )
        rss_kb, user, system = usage.read().split()[-3:]
        return wall, int(rss_kb) * 1024, float(user) + float(system)


def measure(
    commands: dict[str, list[str]], env: dict[str, str], runs: int
) -> dict[str, dict[str, float]]:
    walls: dict[str, list[float]] = {name: [] for name in commands}
    cpus: dict[str, list[float]] = {name: [] for name in commands}
    peaks: dict[str, int] = dict.fromkeys(commands, 0)
    for round_ in range(runs + 1):
        for name, cmd in commands.items():
            wall, rss, cpu = run_reaped(cmd, env)
            if round_ == 0:
                continue  # warm-up: page cache, class-data sharing archives
            walls[name].append(wall)
            cpus[name].append(cpu)
            peaks[name] = max(peaks[name], rss)
    return {
        name: {
            "median_s": statistics.median(walls[name]),
            "min_s": min(walls[name]),
            "max_s": max(walls[name]),
            "cpu_s": statistics.median(cpus[name]),
            "peak_rss_mb": peaks[name] / 1e6,
        }
        for name in commands
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the 64 MiB package only")
    parser.add_argument("--runs", type=int, default=7, help="timed rounds (default 7)")
    parser.add_argument("--keep", type=Path, default=None, help="build packages here, keep, reuse")
    args = parser.parse_args(argv)
    for tool in ("jarsigner", "apksigner", "keytool", "/usr/bin/time"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found: run scripts/system-deps.sh")
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(ROOT / "src")], check=True, env=env
    )
    sizes = [("64MiB", 2000, 64 << 20)]
    if not args.quick:
        sizes.append(("512MiB", 2000, 512 << 20))
    java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr
    results: dict[str, object] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "java": java.splitlines()[0] if java else "?",
            "loadavg_at_start": os.getloadavg(),
        },
        "runs": args.runs,
        "packages": {},
    }
    packages: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="kaisec-bench-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        keys, trust, store = prepare(work)
        floor = work / "floor.py"
        floor.write_text(FLOOR)
        for label, files, target in sizes:
            pkg = package(work, keys, label=label, files=files, target=target)
            jar = [
                "jarsigner",
                "-verify",
                "-strict",
                "-keystore",
                str(store),
                "-storepass",
                STOREPASS,
            ]
            apk = ["apksigner", "verify", "--min-sdk-version", "19", "--max-sdk-version", "23"]
            jar_fast = [jar[0], *FAST_JVM["jarsigner"], *jar[1:]]
            apk_fast = [apk[0], *FAST_JVM["apksigner"], *apk[1:]]
            ours = [str(KAISEC), "--home", str(work / "home"), "verify", "--trust", str(trust)]
            commands = {
                "kaisec verify": [*ours, str(pkg)],
                "jarsigner -verify": [*jar, str(pkg)],
                "jarsigner -verify (start-up flags)": [*jar_fast, str(pkg)],
                "apksigner verify": [*apk, str(pkg)],
                "apksigner verify (start-up flags)": [*apk_fast, str(pkg)],
                "floor (zipfile: inflate + SHA-256)": [sys.executable, str(floor), str(pkg)],
            }
            print(f"measuring {label}...", file=sys.stderr)
            measured = measure(commands, env, args.runs)
            for tool in ("jarsigner -verify", "apksigner verify"):  # keep the JVM's better flags
                fast = measured.pop(f"{tool} (start-up flags)")
                if fast["median_s"] < measured[tool]["median_s"]:
                    measured[tool] = fast | {"jvm_flags": " ".join(FAST_JVM[tool.split()[0]])}
            packages[label] = {"size_bytes": pkg.stat().st_size, "files": files, "tools": measured}
    results["packages"] = packages
    results["machine"]["loadavg_at_end"] = os.getloadavg()  # type: ignore[index]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    return 0


def table(results: dict[str, object]) -> str:
    """The results as a Markdown table."""
    lines = [
        "| package | tool | median wall | CPU (user+sys) | peak RSS | tool / kaisec | vs floor |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for label, row in results["packages"].items():  # type: ignore[attr-defined]
        tools = row["tools"]
        ours = tools["kaisec verify"]["median_s"]
        floor = tools["floor (zipfile: inflate + SHA-256)"]["median_s"]
        size = row["size_bytes"] / (1 << 20)
        for name, m in tools.items():
            flags = f" ({m['jvm_flags']})" if "jvm_flags" in m else ""
            lines.append(
                f"| {label} ({size:.0f} MiB, {row['files']} files) | {name}{flags} | "
                f"{m['median_s'] * 1000:.0f} ms | {m['cpu_s'] * 1000:.0f} ms | "
                f"{m['peak_rss_mb']:.0f} MB | "
                f"{m['median_s'] / ours:.2f}x | {m['median_s'] / floor:.2f}x |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
