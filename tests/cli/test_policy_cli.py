"""The policy commands through ``kaisec._cli.main`` (in-process)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kaisec._cli import main
from kaisec.home import Home
from kaisec.manager import PermissionManager
from kaisec.types import AppClass

from ..conftest import RegisterFn


def run(capsys: pytest.CaptureFixture[str], home: Home, *args: str) -> tuple[int, str, str]:
    code = main(["--home", str(home.root), *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def apps(register: RegisterFn) -> None:
    register("contacts", AppClass.SIGNED, {"contacts": "readwrite", "camera": None})
    register("weather", AppClass.PWA, {"geolocation": None}, origin="https://weather.example")


def test_perms_json_shape(capsys: pytest.CaptureFixture[str], home: Home, apps: None) -> None:
    code, out, _ = run(capsys, home, "perms", "contacts", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["app"] == "contacts"
    assert data["permissions"]["contacts:write"] == "allow"
    assert data["permissions"]["camera"] == "prompt"
    assert data["details"]["camera"]["explicit"] is True


def test_perms_table_for_people(capsys: pytest.CaptureFixture[str], home: Home, apps: None) -> None:
    code, out, _ = run(capsys, home, "perms", "contacts")
    assert code == 0 and "contacts:read" in out and "granted to every signed app" in out


def test_check_by_name_and_origin(
    capsys: pytest.CaptureFixture[str], home: Home, apps: None
) -> None:
    assert run(capsys, home, "check", "contacts", "contacts:read")[:2] == (0, "allow\n")
    code, out, _ = run(capsys, home, "check", "https://weather.example", "geolocation", "--json")
    assert code == 0
    assert json.loads(out) == {"app": "weather", "permission": "geolocation", "action": "prompt"}
    assert run(capsys, home, "check", "weather", "telephony")[:2] == (0, "deny\n")


def test_perms_set_and_errors(capsys: pytest.CaptureFixture[str], home: Home, apps: None) -> None:
    code, out, _ = run(capsys, home, "perms", "set", "weather", "geolocation", "allow", "--json")
    assert code == 0 and json.loads(out)["action"] == "allow"
    code, out, _ = run(capsys, home, "perms", "set", "contacts", "contacts:read", "deny", "--json")
    assert code == 1 and json.loads(out)["error"]["code"] == "IMPLICIT_PERMISSION"
    code, _, err = run(capsys, home, "perms", "set", "nobody", "camera", "deny")
    assert code == 1 and "APP_NOT_FOUND" in err
    code, _, err = run(capsys, home, "perms", "set", "weather", "geolocation", "maybe")
    assert code == 2
    code, out, _ = run(capsys, home, "check", "weather", "no-such-perm", "--json")
    assert code == 1 and json.loads(out)["error"]["code"] == "UNKNOWN_PERMISSION"


def test_once_and_for(capsys: pytest.CaptureFixture[str], home: Home, apps: None) -> None:
    assert run(capsys, home, "perms", "set", "weather", "geolocation", "allow", "--once")[0] == 0
    _, out, _ = run(capsys, home, "perms", "weather", "--json")
    assert json.loads(out)["details"]["geolocation"]["expiry"] == "once"
    assert (
        run(capsys, home, "perms", "set", "weather", "geolocation", "allow", "--for", "60")[0] == 0
    )
    _, out, _ = run(capsys, home, "perms", "weather", "--json")
    assert json.loads(out)["details"]["geolocation"]["expires_at"] is not None
    code, _, _ = run(
        capsys, home, "perms", "set", "weather", "geolocation", "allow", "--once", "--session"
    )
    assert code == 2


def test_pin_flow(
    capsys: pytest.CaptureFixture[str], home: Home, apps: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KAISEC_PIN", raising=False)
    assert run(capsys, home, "pin", "set", "--new", "4321")[0] == 0
    code, _, err = run(capsys, home, "perms", "set", "weather", "geolocation", "allow")
    assert code == 1 and "PIN_REQUIRED" in err
    assert (
        run(capsys, home, "perms", "set", "weather", "geolocation", "allow", "--pin", "4321")[0]
        == 0
    )
    monkeypatch.setenv("KAISEC_PIN", "4321")
    assert run(capsys, home, "pin", "change", "--new", "8765")[0] == 0
    assert run(capsys, home, "pin", "set", "--new", "1111")[0] == 2  # already set


def test_table_command(capsys: pytest.CaptureFixture[str], home: Home) -> None:
    code, out, _ = run(capsys, home, "table", "settings", "--json")
    row = json.loads(out)["rows"][0]
    assert code == 0 and row["expanded"] == ["settings:read", "settings:write"]
    assert row["pwa"] == "deny" and row["core_effective"] == "allow"
    code, out, _ = run(capsys, home, "table", "--json")
    assert len(json.loads(out)["rows"]) == 70
    assert run(capsys, home, "table", "nope")[0] == 1


def test_audit_command(capsys: pytest.CaptureFixture[str], home: Home, apps: None) -> None:
    run(capsys, home, "perms", "set", "weather", "geolocation", "deny")
    code, out, _ = run(capsys, home, "audit", "--app", "weather", "--json")
    entries = json.loads(out)["entries"]
    assert code == 0 and entries[-1]["decision"] == "set:deny" and entries[-1]["actor"] == "cli"


def test_home_from_environment(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAISEC_HOME", str(tmp_path / "envhome"))
    assert main(["audit", "--json"]) == 0
    assert (tmp_path / "envhome").is_dir()


def test_manager_sees_cli_changes(
    home: Home, manager: PermissionManager, apps: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert manager.check("https://weather.example", "geolocation").value == "prompt"
    run(capsys, home, "perms", "set", "weather", "geolocation", "deny")
    assert manager.check("https://weather.example", "geolocation").value == "deny"
