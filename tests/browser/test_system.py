"""The system app's other views: apps, the PIN and developer mode, the audit log."""

from __future__ import annotations

from playwright.sync_api import expect

from kaisec.installer import Installer
from kaisec.registry import list_apps
from kaisec.types import Action

from .conftest import Phone

CONTACTS = "http://contacts.localhost"


def test_installed_apps_uninstall_and_install_from_a_url(phone: Phone, plain_site: str) -> None:
    system = phone.open_system()
    system.click("#tab-apps")
    apps = system.locator("#app-list li")
    expect(apps.locator(".app-name")).to_have_text(
        ["Contacts", "Dialer", "Gallery", "System", "Weather"]
    )
    contacts = system.locator("#app-list li[data-name='Contacts']")
    expect(contacts.locator(".badge")).to_have_text("signed")
    expect(contacts.locator(".meta")).to_contain_text("version 1.0.0")
    expect(contacts.locator(".meta")).to_contain_text("signed by CN=kaisec dev store signer")
    expect(contacts.locator(".origin")).to_have_text(f"http://contacts.localhost:{phone.port}")
    expect(system.locator("#app-list li[data-name='Dialer'] .badge")).to_have_text("core")
    weather = system.locator("#app-list li[data-name='Weather']")
    expect(weather.locator(".badge")).to_have_text("pwa")
    expect(weather.locator(".meta")).to_contain_text("hosted, not signed")
    expect(weather.locator("img.icon")).to_have_attribute("src", f"{phone.weather.origin}/icon.svg")
    # the preloaded system app cannot be removed
    expect(
        system.locator("#app-list li[data-name='System'] [data-act='uninstall']")
    ).to_be_disabled()
    expect(contacts.locator("[data-act='uninstall']")).to_be_enabled()

    # uninstall asks for a confirmation first
    weather.locator("[data-act='uninstall']").click()
    expect(weather.locator("[data-act='uninstall']")).to_have_text("Confirm uninstall")
    weather.locator("[data-act='uninstall']").click()
    expect(system.locator("#message")).to_have_text("Weather was uninstalled.")
    expect(apps).to_have_count(4)
    with Installer(phone.home) as inst:
        assert phone.weather.origin not in {a.origin for a in list_apps(inst.store)}

    # install from a URL, with progress
    system.fill("#install-url", phone.weather.manifest_url)
    system.click("#install-button")
    expect(system.locator("#install-status")).to_have_text(
        "Installed Weather (pwa, version 1.0.0)."
    )
    progress = system.locator("#install-progress")
    expect(progress).to_be_visible()
    assert progress.evaluate("p => p.value") == 1
    assert "fetching manifest" in (progress.get_attribute("data-stages") or "")
    expect(apps).to_have_count(5)

    # a refusal is shown, with its code
    system.fill("#install-url", f"{plain_site}/manifest.webmanifest")
    system.click("#install-button")
    expect(system.locator("#install-status")).to_contain_text("Not installed:")
    expect(system.locator("#install-status")).to_have_class("status error")
    expect(apps).to_have_count(5)
    phone.assert_clean_consoles()


def test_pin_protects_allow_and_developer_mode(phone: Phone) -> None:
    system = phone.open_system()
    system.click("#tab-settings")
    expect(system.locator("#dev-state")).to_have_text("off")
    system.fill("#pin-new", "1234")
    system.fill("#pin-repeat", "1235")
    system.click("#pin-set")
    expect(system.locator("#pin-status")).to_have_text("The two new PINs differ.")
    system.fill("#pin-repeat", "1234")
    system.click("#pin-set")
    expect(system.locator("#pin-status")).to_have_text("PIN set.")

    # turning camera to allow needs the PIN: the dialog asks, a wrong one asks again
    system.click("#tab-permissions")
    system.select_option("#perm-app", label="Contacts")
    row = system.locator("#perm-explicit li[data-permission='camera']")
    expect(row).to_have_attribute("data-action", "prompt")
    row.locator("button[data-action='allow']").click()
    dialog = system.locator("#pin-dialog")
    expect(dialog).to_be_visible()
    expect(system.locator("#pin-dialog-why")).to_contain_text("camera")
    system.fill("#pin-dialog-input", "9999")
    system.click("#pin-dialog-ok")
    expect(system.locator("#pin-dialog-error")).to_have_text("Wrong PIN. Try again.")
    expect(dialog).to_be_visible()
    system.fill("#pin-dialog-input", "1234")
    system.click("#pin-dialog-ok")
    expect(dialog).to_be_hidden()
    expect(row).to_have_attribute("data-action", "allow")

    # cancelling changes nothing; turning to deny needs no PIN
    read = system.locator("#perm-explicit li[data-permission='device-storage:pictures:read']")
    read.locator("button[data-action='allow']").click()
    expect(dialog).to_be_visible()
    system.click("#pin-dialog-cancel")
    expect(dialog).to_be_hidden()
    expect(read).to_have_attribute("data-action", "prompt")
    read.locator("button[data-action='deny']").click()
    expect(read).to_have_attribute("data-action", "deny")
    expect(dialog).to_be_hidden()
    mgr = phone.manager()
    try:
        assert mgr.check(CONTACTS, "camera", use=False) is Action.ALLOW
        assert mgr.check(CONTACTS, "device-storage:pictures:read", use=False) is Action.DENY
    finally:
        mgr.close()

    # developer mode: on needs the PIN, off does not
    system.click("#tab-settings")
    system.click("#dev-toggle")
    expect(dialog).to_be_visible()
    expect(system.locator("#pin-dialog-why")).to_contain_text("developer mode")
    system.fill("#pin-dialog-input", "1234")
    system.keyboard.press("Enter")
    expect(system.locator("#dev-state")).to_have_text("on")
    with Installer(phone.home) as inst:
        assert inst.developer_mode() is True
    system.click("#dev-toggle")
    expect(system.locator("#dev-state")).to_have_text("off")
    expect(dialog).to_be_hidden()
    with Installer(phone.home) as inst:
        assert inst.developer_mode() is False

    # changing the PIN needs the current one
    system.fill("#pin-old", "1111")
    system.fill("#pin-new", "5678")
    system.fill("#pin-repeat", "5678")
    system.click("#pin-set")
    expect(system.locator("#pin-status")).to_have_text("The current PIN is missing or wrong.")
    system.fill("#pin-old", "1234")
    system.fill("#pin-new", "5678")
    system.fill("#pin-repeat", "5678")
    system.click("#pin-set")
    expect(system.locator("#pin-status")).to_have_text("PIN set.")
    phone.assert_clean_consoles()


def test_audit_log_filters_by_app_and_permission(phone: Phone) -> None:
    # with no system app open, a prompt has nobody to ask: denied, and audited
    weather = phone.open_weather()
    weather.click("#here")
    expect(weather.locator("#status")).to_contain_text("Location denied (geolocation)")
    dialer = phone.open_app("dialer")
    dialer.fill("#number", "5551234")
    dialer.click("#call")
    expect(dialer.locator("#call-state")).to_have_attribute("data-state", "connected")

    system = phone.open_system()
    system.click("#tab-audit")
    entries = system.locator("#audit-list li")
    expect(entries.first).to_be_visible()
    own = system.locator(
        "#audit-list li[data-origin='http://system.localhost'][data-actor='gateway']"
    )
    expect(own).to_have_count(0)  # the system app's own calls are hidden by default...
    system.check("#audit-self")
    expect(own.first).to_be_visible()  # ... and shown on request
    expect(own.first).to_have_attribute("data-permission", "permissions")
    total = entries.count()

    system.select_option("#audit-app", label="Weather")
    expect(
        system.locator(f"#audit-list li:not([data-origin='{phone.weather.origin}'])")
    ).to_have_count(0)
    denied = system.locator("#audit-list li[data-permission='geolocation']")
    expect(denied).to_have_count(1)
    expect(denied).to_have_attribute("data-decision", "prompt:deny")
    expect(denied.locator(".who")).to_have_text("Weather")
    expect(denied.locator(".detail")).to_contain_text("no prompt screen is open")
    assert entries.count() < total

    system.select_option("#audit-app", label="All apps")
    system.fill("#audit-permission", "telephony")
    system.click("#audit-apply")
    expect(system.locator("#audit-list li:not([data-permission='telephony'])")).to_have_count(0)
    expect(
        system.locator("#audit-list li[data-origin='http://dialer.localhost']").first
    ).to_have_attribute("data-decision", "allow")
    system.select_option("#audit-app", label="Weather")
    expect(entries).to_have_count(0)
    expect(system.locator("#audit-summary")).to_have_text("0 entries, newest first")
    phone.assert_clean_consoles()
