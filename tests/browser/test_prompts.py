"""Runtime prompts end to end: the weather PWA asks, the system app's page answers."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

from kaisec.installer import Installer
from kaisec.types import Action

from .conftest import Phone


def prompt_for(system, permission: str):  # type: ignore[no-untyped-def]
    return system.locator(f"#prompt-list article.prompt[data-permission='{permission}']")


def ask_weather(phone: Phone, weather, system):  # type: ignore[no-untyped-def]
    """Click "Weather here"; returns the system app's prompt for it."""
    weather.click("#here")
    prompt = prompt_for(system, "geolocation")
    expect(prompt).to_have_count(1)
    return prompt


def geolocation(phone: Phone) -> Action:
    mgr = phone.manager()
    try:
        return mgr.check(phone.weather.origin, "geolocation", use=False)
    finally:
        mgr.close()


def test_allow_once_works_once(phone: Phone) -> None:
    system = phone.open_system()
    weather = phone.open_weather()

    prompt = ask_weather(phone, weather, system)
    # the PWA says it is waiting; the prompt says who asks for what, and why
    expect(weather.locator("#status")).to_have_class("status waiting")
    expect(weather.locator("#status")).to_contain_text("Asking")
    expect(prompt.locator(".prompt-app")).to_have_text("Weather")
    expect(prompt.locator(".badge")).to_have_text("pwa")
    expect(prompt.locator(".origin")).to_have_text(phone.weather.origin)
    expect(prompt.locator(".perm")).to_have_text("geolocation")
    expect(prompt.locator(".prompt-why")).to_contain_text("show the weather where you are")
    expect(prompt.locator("button")).to_have_text(
        ["Allow once", "Allow", "Allow for 1 hour", "Deny", "Deny and remember"]
    )
    # a visible countdown of the 30 s timeout
    first = int(prompt.get_attribute("data-seconds-left") or "0")
    assert 25 <= first <= 30
    time.sleep(1.6)
    later = int(prompt.get_attribute("data-seconds-left") or "0")
    assert later < first
    expect(prompt.locator(".seconds")).to_have_text(f"{later} s")

    prompt.locator("button[data-answer='once']").click()
    expect(weather.locator("#forecast")).to_be_visible()
    expect(weather.locator("#forecast")).to_have_attribute("data-lat", "48.8566")
    expect(weather.locator("#place")).to_contain_text("48.8566")
    expect(system.locator("#prompt-list article")).to_have_count(0)
    assert geolocation(phone) is Action.PROMPT  # nothing remembered

    # once means once: the next request asks again; this time the answer is no
    prompt = ask_weather(phone, weather, system)
    prompt.locator("button[data-answer='deny']").click()
    expect(weather.locator("#status")).to_contain_text("Location denied (geolocation)")
    expect(weather.locator("#forecast")).to_be_hidden()
    assert system.locator("body").get_attribute("data-prompts-seen") == "2"
    assert geolocation(phone) is Action.PROMPT
    phone.assert_clean_consoles()


@pytest.mark.daemon(prompt_timeout=1.5)
def test_an_unanswered_prompt_goes_away_and_the_call_is_denied(phone: Phone) -> None:
    system = phone.open_system()
    weather = phone.open_weather()
    ask_weather(phone, weather, system)
    expect(system.locator("#prompt-list article")).to_have_count(0, timeout=5000)
    expect(system.locator("#message")).to_have_text(
        "No answer in time: Weather was denied geolocation."
    )
    expect(system.locator("#prompts-empty")).to_be_visible()
    expect(weather.locator("#status")).to_contain_text("Location denied (geolocation)")
    assert geolocation(phone) is Action.PROMPT  # a timeout is not an answer to remember
    phone.assert_clean_consoles()


def test_allow_remembered_survives_a_daemon_restart(phone: Phone) -> None:
    system = phone.open_system()
    weather = phone.open_weather()
    ask_weather(phone, weather, system).locator("button[data-answer='allow']").click()
    expect(weather.locator("#forecast")).to_be_visible()
    assert geolocation(phone) is Action.ALLOW

    phone.restart()
    # the system app reconnects by itself and watches again
    expect(system.locator("body")).to_have_attribute("data-sessions", "2", timeout=15_000)
    expect(system.locator("body")).to_have_attribute("data-watching", "true")

    weather.click("#here")  # the PWA reconnects on demand, with a fresh token
    expect(weather.locator("#status")).to_have_text("Here is your weather.")
    expect(weather.locator("#forecast")).to_be_visible()
    assert system.locator("body").get_attribute("data-prompts-seen") == "1"  # no new prompt
    assert geolocation(phone) is Action.ALLOW
    phone.assert_clean_consoles()


def test_deny_remembered_is_kept_after_an_update(phone: Phone) -> None:
    system = phone.open_system()
    weather = phone.open_weather()
    ask_weather(phone, weather, system).locator("button[data-answer='deny-remember']").click()
    expect(weather.locator("#status")).to_contain_text("Location denied (geolocation)")
    assert geolocation(phone) is Action.DENY

    phone.weather.version = "1.1.0"
    with Installer(phone.home) as inst:
        result = inst.update(phone.weather.origin, phone.weather.manifest_url)
    assert result.app.version == "1.1.0"

    weather.click("#here")
    expect(weather.locator("#status")).to_contain_text("Location denied (geolocation)")
    assert system.locator("body").get_attribute("data-prompts-seen") == "1"  # not asked again
    assert geolocation(phone) is Action.DENY
    # the system app shows the new version
    system.click("#tab-apps")
    expect(system.locator("#app-list li[data-name='Weather'] .meta")).to_contain_text(
        "version 1.1.0"
    )
    phone.assert_clean_consoles()


def test_premium_rate_calls_are_confirmed_every_time_and_prompts_queue(phone: Phone) -> None:
    system = phone.open_system()
    dialer = phone.open_app("dialer")
    weather = phone.open_weather()

    dialer.fill("#number", "900123")
    dialer.click("#call")
    premium = prompt_for(system, "telephony")
    expect(premium).to_have_count(1)
    expect(dialer.locator("#status")).to_contain_text("Waiting for your answer in the system app")
    expect(premium.locator(".prompt-reason")).to_contain_text(
        "Premium-rate number 900123: asked every time"
    )
    # never remembered: only "Allow once" and "Deny"
    expect(premium.locator("button")).to_have_text(["Allow once", "Deny"])

    # a second question queues behind the first
    weather.click("#here")
    expect(system.locator("#prompt-list article")).to_have_count(2)
    expect(system.locator("#prompts-queue")).to_have_text("2 questions waiting")
    expect(system.locator("#prompt-count")).to_have_text("2")

    premium.locator("button[data-answer='once']").click()
    expect(dialer.locator("#call-state")).to_have_attribute("data-state", "connected")
    prompt_for(system, "geolocation").locator("button[data-answer='deny']").click()
    expect(weather.locator("#status")).to_contain_text("Location denied")

    # and the next premium call asks again; "no" reaches the dialer as a permission error
    dialer.click("#hangup")
    expect(dialer.locator("#call-state")).to_have_attribute("data-state", "disconnected")
    dialer.click("#call")
    expect(premium).to_have_count(1)
    premium.locator("button[data-answer='deny']").click()
    expect(dialer.locator("#status")).to_contain_text("telephony")
    expect(dialer.locator("#status")).to_have_class("status error")
    phone.assert_clean_consoles()


def test_keyboard_only(phone: Phone) -> None:
    system = phone.open_system()
    weather = phone.open_weather()
    # Left/Right switch views
    system.keyboard.press("ArrowRight")
    expect(system.locator("body")).to_have_attribute("data-view", "apps")
    expect(system.locator("#softkey-left")).to_have_text("Install")
    system.keyboard.press("ArrowRight")
    expect(system.locator("body")).to_have_attribute("data-view", "permissions")
    system.keyboard.press("ArrowLeft")
    system.keyboard.press("ArrowLeft")
    expect(system.locator("body")).to_have_attribute("data-view", "prompts")
    system.keyboard.press("ArrowLeft")  # wraps around
    expect(system.locator("body")).to_have_attribute("data-view", "settings")

    # a prompt brings its view forward; the right softkey (F2) allows once
    ask_weather(phone, weather, system)
    expect(system.locator("body")).to_have_attribute("data-view", "prompts")
    expect(system.locator("#softkey-right")).to_have_text("Allow once")
    system.keyboard.press("F2")
    expect(weather.locator("#forecast")).to_be_visible()
    # answered: back to where the user was
    expect(system.locator("body")).to_have_attribute("data-view", "settings")

    # Down walks the prompt's buttons, Enter picks one: "Allow for 1 hour"
    prompt = ask_weather(phone, weather, system)
    for _ in range(3):
        system.keyboard.press("ArrowDown")
    expect(prompt.locator("button[data-answer='hour']")).to_be_focused()
    system.keyboard.press("Enter")
    expect(weather.locator("#forecast")).to_be_visible()
    expect(system.locator("body")).to_have_attribute("data-view", "settings")
    mgr = phone.manager()
    try:
        state = {s.permission: s for s in mgr.permissions(phone.weather.origin)}["geolocation"]
    finally:
        mgr.close()
    assert state.action is Action.ALLOW
    assert state.expiry.value == "until"
    assert state.expires_at is not None and 3500 < state.expires_at - time.time() <= 3600

    # the Permissions view shows the time-limited grant
    system.keyboard.press("ArrowLeft")  # settings -> audit
    system.keyboard.press("ArrowLeft")  # audit -> permissions
    expect(system.locator("body")).to_have_attribute("data-view", "permissions")
    system.select_option("#perm-app", label="Weather")
    row = system.locator("#perm-explicit li[data-permission='geolocation']")
    expect(row).to_have_attribute("data-action", "allow")
    expect(row.locator(".perm-expiry")).to_contain_text("until")
    phone.assert_clean_consoles()
