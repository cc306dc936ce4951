"""The runtime daemon: per-origin app server, credential validation, the API gateway."""

from kaisec.daemon.app import Runtime, create_app, serve
from kaisec.daemon.config import DaemonConfig

__all__ = ["DaemonConfig", "Runtime", "create_app", "serve"]
