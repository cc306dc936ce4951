"""The bundled dialer and contacts apps in a real browser."""

from __future__ import annotations

import base64

from playwright.sync_api import expect

from kaisec.types import Action

from .conftest import Phone


def test_dialer_places_a_call_and_shows_its_states(phone: Phone) -> None:
    phone.runtime.device.contacts.add({"name": "Ada Lovelace", "numbers": ["555 1234"]})
    dialer = phone.open_app("dialer")
    for key in "555":
        dialer.click(f"#keypad button[data-key='{key}']")
    dialer.locator("body").press("1")  # the keyboard's digits type too
    dialer.locator("body").press("2")
    dialer.locator("body").press("3")
    dialer.locator("body").press("4")
    expect(dialer.locator("#number")).to_have_value("5551234")
    expect(dialer.locator("#contact-name")).to_have_text("Ada Lovelace")  # contacts.find {number}

    dialer.keyboard.press("Enter")  # Enter calls
    expect(dialer.locator("#call-state")).to_have_attribute("data-state", "connected")
    expect(dialer.locator("#call-states li")).to_have_text(["dialing", "alerting", "connected"])
    expect(dialer.locator("#call-number")).to_have_text("5551234")
    expect(dialer.locator("#call-name")).to_have_text("Ada Lovelace")
    calls = phone.runtime.device.telephony.calls()
    assert [(c.number, c.state, c.owner) for c in calls] == [
        ("5551234", "connected", "http://dialer.localhost")
    ]

    dialer.keyboard.press("F2")  # the right softkey hangs up
    expect(dialer.locator("#call-state")).to_have_attribute("data-state", "disconnected")
    expect(dialer.locator("#hangup")).to_be_disabled()
    expect(dialer.locator("#call-states li")).to_have_text(
        ["dialing", "alerting", "connected", "disconnected"]
    )
    assert phone.runtime.device.telephony.calls()[0].state == "disconnected"
    phone.assert_clean_consoles()


def test_emergency_calls_go_through_without_a_sim(phone: Phone) -> None:
    dialer = phone.open_app("dialer")
    phone.runtime.device.telephony.set_sim(False)
    dialer.fill("#number", "5551234")
    dialer.click("#call")
    expect(dialer.locator("#status")).to_contain_text("No SIM card")
    expect(dialer.locator("#call-panel")).to_be_hidden()

    dialer.fill("#number", "112")
    dialer.locator("#number").dispatch_event("input")
    expect(dialer.locator("#emergency-hint")).to_be_visible()
    dialer.click("#emergency")  # always there, always works
    expect(dialer.locator("#call-state")).to_have_attribute("data-state", "connected")
    expect(dialer.locator("#call-panel")).to_have_attribute("data-emergency", "true")
    expect(dialer.locator("#call-number")).to_have_text("112 (emergency)")
    calls = phone.runtime.device.telephony.calls()
    assert [(c.number, c.emergency, c.state) for c in calls] == [("112", True, "connected")]
    phone.assert_clean_consoles()


def test_contacts_add_list_and_a_photo_through_prompts(phone: Phone) -> None:
    system = phone.open_system()
    contacts = phone.open_app("contacts")
    expect(contacts.locator("#empty")).to_be_visible()
    for name, number in (("Grace Hopper", "5550100"), ("Ada Lovelace", "5551234")):
        contacts.fill("#name", name)
        contacts.fill("#phone", number)
        contacts.click("#add")
        expect(contacts.locator("#status")).to_have_text(f"Added {name}.")
    items = contacts.locator("#contact-list li")
    expect(items.locator(".name")).to_have_text(["Ada Lovelace", "Grace Hopper"])  # sorted
    expect(items.locator(".numbers")).to_have_text(["5551234", "5550100"])
    stored = {c.name: c.numbers for c in phone.runtime.device.contacts.find()}
    assert stored == {"Ada Lovelace": ("5551234",), "Grace Hopper": ("5550100",)}

    ada = contacts.locator("#contact-list li[data-name='Ada Lovelace']")
    ada.locator(".take-photo").click()
    # camera, then storing the file, then reading it back: each asks the user once
    for permission in (
        "camera",
        "device-storage:pictures:create",
        "device-storage:pictures:read",
    ):
        prompt = system.locator(f"#prompt-list article[data-permission='{permission}']")
        expect(prompt).to_have_count(1)
        expect(contacts.locator("#status")).to_contain_text(
            "Waiting for your answer in the system app"
        )
        expect(prompt.locator(".prompt-app")).to_have_text("Contacts")
        expect(prompt.locator(".badge")).to_have_text("signed")
        prompt.locator("button[data-answer='allow']").click()

    photo = ada.locator("img.photo")
    expect(photo).to_be_visible()
    assert photo.evaluate("img => img.naturalWidth") == 96
    assert (photo.get_attribute("src") or "").startswith("data:image/png;base64,")
    expect(contacts.locator("#contact-list li[data-name='Grace Hopper'] img")).to_have_count(0)

    # the contact points at a file of the contacts app's own storage
    record = next(c for c in phone.runtime.device.contacts.find() if c.name == "Ada Lovelace")
    assert record.photo is not None and record.photo.startswith("pictures:contact-")
    name = record.photo.split(":", 1)[1]
    info, data = phone.runtime.device.storage.get(
        "pictures", name, owner="http://contacts.localhost"
    )
    assert data.startswith(b"\x89PNG") and info.mime == "image/png"
    assert (photo.get_attribute("src") or "").endswith(base64.b64encode(data).decode()[-16:])
    mgr = phone.manager()
    try:
        for perm in ("camera", "device-storage:pictures:create", "device-storage:pictures:read"):
            assert mgr.check("http://contacts.localhost", perm, use=False) is Action.ALLOW
    finally:
        mgr.close()

    # a reload shows the photo without asking again
    contacts.reload()
    expect(contacts.locator("#contact-list li[data-name='Ada Lovelace'] img.photo")).to_be_visible()
    assert system.locator("body").get_attribute("data-prompts-seen") == "3"
    phone.assert_clean_consoles()


def test_a_denied_prompt_reaches_the_contacts_app_as_a_permission_error(phone: Phone) -> None:
    system = phone.open_system()
    contacts = phone.open_app("contacts")
    contacts.fill("#name", "Ada Lovelace")
    contacts.click("#add")
    contacts.locator("#contact-list li .take-photo").click()
    prompt = system.locator("#prompt-list article[data-permission='camera']")
    expect(contacts.locator("#status")).to_contain_text("Waiting for your answer in the system app")
    prompt.locator("button[data-answer='deny']").click()
    expect(contacts.locator("#status")).to_have_text("Not allowed: camera.")
    expect(contacts.locator("#status")).to_have_class("status error")
    phone.assert_clean_consoles()
