"""kaisec keys/trust/pack/sign/verify, in-process through ``kaisec._cli.main``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kaisec._cli import main

from .conftest import Pki, app_files, signed_package, zip_bytes

Capsys = pytest.CaptureFixture[str]


def run_json(capsys: Capsys, *args: str) -> tuple[int, object]:
    rc = main(list(args))
    out = capsys.readouterr().out
    return rc, json.loads(out) if out.strip() else None


def write_app(folder: Path, files: dict[str, bytes] | None = None) -> Path:
    for name, data in (files or app_files()).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return folder


@pytest.fixture
def dev(tmp_path: Path, capsys: Capsys) -> tuple[Path, Path]:
    """A home with a dev PKI trusted (EC keys: fast)."""
    home = tmp_path / "home"
    rc, out = run_json(
        capsys, "--home", str(home), "keys", "init", "--key-type", "ec", "--trust", "--json"
    )
    assert rc == 0
    assert isinstance(out, dict) and len(out["trusted"]) == 2
    return home, home / "keys"


def test_full_flow(dev: tuple[Path, Path], tmp_path: Path, capsys: Capsys) -> None:
    home, keys = dev
    app = write_app(tmp_path / "app")
    h = ["--home", str(home)]
    assert main([*h, "pack", str(app), "-o", str(tmp_path / "a.zip")]) == 0
    assert "packed" in capsys.readouterr().out
    assert main([*h, "sign", str(tmp_path / "a.zip"), "--key", str(keys / "store-signer.key"),
                 "--cert", str(keys / "store-signer.pem"), "-o", str(tmp_path / "s.zip")]) == 0  # fmt: skip
    capsys.readouterr()
    rc, out = run_json(capsys, *h, "verify", "--json", str(tmp_path / "s.zip"))
    assert rc == 0
    assert isinstance(out, dict)
    assert out["valid"] is True and out["class"] == "signed" and out["error"] is None
    assert out["signer"]["subject"] == "CN=kaisec dev store signer,O=kaisec development"
    assert len(out["signer"]["fingerprint"]) == 64
    assert list(out) == ["valid", "class", "signer", "error"]
    # Human output, then a core package signed by the OEM key.
    assert main([*h, "verify", str(tmp_path / "s.zip")]) == 0
    assert "valid: signed app 'Test App' 1.0.0" in capsys.readouterr().out
    write_app(
        tmp_path / "app", {"manifest.webmanifest": app_files(core=True)["manifest.webmanifest"]}
    )
    main([*h, "pack", str(app), "-o", str(tmp_path / "c.zip")])
    main([*h, "sign", str(tmp_path / "c.zip"), "--key", str(keys / "oem-signer.key"),
          "--cert", str(keys / "oem-signer.pem")])  # fmt: skip
    capsys.readouterr()
    rc, out = run_json(capsys, *h, "verify", "--json", str(tmp_path / "c.zip"))
    assert rc == 0 and isinstance(out, dict) and out["class"] == "core"
    # The same core package re-signed by the store key asks too much.
    main([*h, "sign", str(tmp_path / "c.zip"), "--key", str(keys / "store-signer.key"),
          "--cert", str(keys / "store-signer.pem")])  # fmt: skip
    capsys.readouterr()
    rc, out = run_json(capsys, *h, "verify", "--json", str(tmp_path / "c.zip"))
    assert rc == 1 and isinstance(out, dict)
    assert out == {
        "valid": False,
        "class": None,
        "signer": None,
        "error": out["error"],
    }
    assert out["error"]["code"] == "INVALID_SECURITY_LEVEL"
    assert main([*h, "verify", str(tmp_path / "c.zip")]) == 1
    assert "invalid: INVALID_SECURITY_LEVEL" in capsys.readouterr().err


def test_verify_exit_codes(tmp_path: Path, capsys: Capsys, pki: Pki) -> None:
    home = ["--home", str(tmp_path / "home")]
    unsigned = tmp_path / "u.zip"
    unsigned.write_bytes(zip_bytes(sorted(app_files().items())))
    rc, out = run_json(capsys, *home, "verify", "--json", str(unsigned))
    assert rc == 1 and isinstance(out, dict) and out["error"]["code"] == "NOT_SIGNED"
    assert main([*home, "verify", str(tmp_path / "missing.zip")]) == 2
    assert main([*home, "verify", "--trust", str(tmp_path / "nope"), str(unsigned)]) == 2
    assert main([*home, "verify"]) == 2
    capsys.readouterr()
    # A broken trust store is a usage problem (2), reported in the JSON shape. (It is
    # read once a signature needs it: an unsigned package is NOT_SIGNED before that.)
    bad = tmp_path / "trust" / "signed"
    bad.mkdir(parents=True)
    (bad / "x.pem").write_bytes(b"garbage")
    signed = signed_package(tmp_path, signer=pki.store)
    rc, out = run_json(
        capsys, *home, "verify", "--json", "--trust", str(tmp_path / "trust"), str(signed)
    )
    assert rc == 2 and isinstance(out, dict) and out["error"]["code"] == "INVALID_CONFIG"
    # Verifying never creates the home.
    assert not (tmp_path / "home").exists()


def test_trust_commands(dev: tuple[Path, Path], tmp_path: Path, capsys: Capsys) -> None:
    home, keys = dev
    h = ["--home", str(home)]
    rc, out = run_json(capsys, *h, "trust", "list", "--json")
    assert rc == 0 and isinstance(out, dict)
    assert [r["class"] for r in out["roots"]] == ["core", "signed"]
    assert main([*h, "trust", "list"]) == 0
    text = capsys.readouterr().out
    assert "kaisec dev oem root" in text and "kaisec dev store root" in text
    rc, out = run_json(
        capsys, *h, "trust", "add", "--class", "signed", "--json", str(keys / "store-signer.pem")
    )
    assert rc == 1 and isinstance(out, dict) and out["error"]["code"] == "INVALID_KEY"
    assert main([*h, "trust", "add", "--class", "pwa", str(keys / "store-root.pem")]) == 2
    assert main([*h, "trust", "add", "--class", "core", str(keys / "store-root.pem")]) == 0
    assert "trusted core root" in capsys.readouterr().out


def test_keys_init_default_dir_and_refusal(tmp_path: Path, capsys: Capsys) -> None:
    home = tmp_path / "home"
    assert main(["--home", str(home), "keys", "init", "--key-type", "ec"]) == 0
    out = capsys.readouterr().out
    assert str(home / "keys") in out and "kaisec trust add" in out
    assert main(["--home", str(home), "keys", "init", "--key-type", "ec"]) == 1
    assert "refusing to overwrite" in capsys.readouterr().err


def test_encrypted_key_with_passphrase_file(tmp_path: Path, capsys: Capsys) -> None:
    home = ["--home", str(tmp_path / "home")]
    (tmp_path / "pass.txt").write_text("correct horse\n")
    assert main([*home, "keys", "init", "--key-type", "ec", "--out", str(tmp_path / "k"),
                 "--passphrase-file", str(tmp_path / "pass.txt")]) == 0  # fmt: skip
    assert b"ENCRYPTED" in (tmp_path / "k" / "store-signer.key").read_bytes()
    unsigned = tmp_path / "u.zip"
    unsigned.write_bytes(zip_bytes(sorted(app_files().items())))
    sign = [*home, "sign", str(unsigned), "--key", str(tmp_path / "k" / "store-signer.key"),
            "--cert", str(tmp_path / "k" / "store-signer.pem")]  # fmt: skip
    assert main([*sign, "--passphrase-file", str(tmp_path / "pass.txt")]) == 0
    (tmp_path / "wrong.txt").write_text("nope\n")
    assert main([*sign, "--passphrase-file", str(tmp_path / "wrong.txt")]) == 1
    assert "INVALID_KEY" in capsys.readouterr().err


def test_sign_options(dev: tuple[Path, Path], tmp_path: Path, capsys: Capsys) -> None:
    home, keys = dev
    h = ["--home", str(home)]
    unsigned = tmp_path / "u.zip"
    unsigned.write_bytes(zip_bytes(sorted(app_files().items())))
    rc, out = run_json(capsys, *h, "sign", "--json", "--legacy-sha1", str(unsigned), "--key",
                       str(keys / "store-signer.key"), "--cert", str(keys / "store-signer.pem"),
                       "--chain", str(keys / "store-root.pem"))  # fmt: skip
    assert rc == 0 and isinstance(out, dict) and out["package"] == str(unsigned)
    # KaiOS layout needs an RSA key; these dev keys are EC.
    rc, out = run_json(capsys, *h, "sign", "--json", "--kaios-layout", str(unsigned), "--key",
                       str(keys / "store-signer.key"), "--cert", str(keys / "store-signer.pem"))  # fmt: skip
    assert rc == 1 and isinstance(out, dict) and out["error"]["code"] == "INVALID_KEY"
    rc, out = run_json(capsys, *h, "verify", "--json", "--legacy", str(unsigned))
    assert rc == 0 and isinstance(out, dict) and out["class"] == "signed"


def test_pack_errors(tmp_path: Path, capsys: Capsys) -> None:
    home = ["--home", str(tmp_path / "home")]
    app = write_app(tmp_path / "app")
    (app / "manifest.webmanifest").write_bytes(b"{")
    rc, out = run_json(capsys, *home, "pack", "--json", str(app), "-o", str(tmp_path / "a.zip"))
    assert rc == 1 and isinstance(out, dict) and out["error"]["code"] == "INVALID_MANIFEST"
    assert main([*home, "pack", str(tmp_path / "nope"), "-o", str(tmp_path / "a.zip")]) == 2
    assert not (tmp_path / "a.zip").exists()
