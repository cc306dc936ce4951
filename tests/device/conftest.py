"""Fixtures of the device tests: a device on a fresh home, and its events."""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterator

import pytest

from kaisec.device import Device, DeviceConfig, DeviceEvent, open_device
from kaisec.home import Home


@pytest.fixture
def config() -> DeviceConfig:
    return DeviceConfig(call_step=0.01)


@pytest.fixture
def dev(home: Home, config: DeviceConfig) -> Iterator[Device]:
    device = open_device(home, config=config)
    yield device
    device.close()


@pytest.fixture
def reopen(home: Home, config: DeviceConfig) -> Iterator[Callable[[Device], Device]]:
    """reopen(dev): close ``dev`` and open the same home again."""
    opened: list[Device] = []

    def _reopen(device: Device) -> Device:
        device.close()
        new = open_device(home, config=config)
        opened.append(new)
        return new

    yield _reopen
    for device in opened:
        device.close()


class Events:
    """Collects a device's events; ``next()`` waits for one."""

    def __init__(self, device: Device) -> None:
        self.device = device
        self.queue: queue.Queue[DeviceEvent] = queue.Queue()
        self.unsubscribe = device.subscribe(self.queue.put)

    def next(self, timeout: float = 2.0) -> DeviceEvent:
        return self.queue.get(timeout=timeout)

    def drain(self) -> list[DeviceEvent]:
        assert self.device.flush_events()
        out = []
        while True:
            try:
                out.append(self.queue.get_nowait())
            except queue.Empty:
                return out


@pytest.fixture
def events(dev: Device) -> Events:
    return Events(dev)


@pytest.fixture(scope="module")
def shared_dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Device]:
    """One device for a module's tables of refused inputs: refusals change no state.

    Opening a device costs a few fsyncs; sharing one keeps the suite fast.
    """
    home = Home(tmp_path_factory.mktemp("shared") / "home").ensure()
    device = open_device(home, config=DeviceConfig(call_step=0.01))
    yield device
    device.close()
