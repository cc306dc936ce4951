"""Where kaisec keeps its state: the home directory and the paths inside it.

The home is ``--home``, else ``$KAISEC_HOME``, else the platform's user data
directory. Layout::

    kaisec.db          SQLite: app registry, permissions store, audit log, settings
    kaisec.db-gen      8-byte change counter shared by every process (decision caches)
    policy.toml        OEM/operator overrides (optional)
    trust/signed/*.pem store roots          trust/core/*.pem  OEM/operator roots
    apps/<uuid>/       installed packages
    storage/           device storage areas (simulated device)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Home", "resolve_home"]


@dataclass(frozen=True)
class Home:
    """The paths of one kaisec home."""

    root: Path

    @property
    def db_path(self) -> Path:
        return self.root / "kaisec.db"

    @property
    def policy_path(self) -> Path:
        return self.root / "policy.toml"

    @property
    def trust_dir(self) -> Path:
        return self.root / "trust"

    @property
    def apps_dir(self) -> Path:
        return self.root / "apps"

    @property
    def storage_dir(self) -> Path:
        return self.root / "storage"

    def ensure(self) -> Home:
        """Create the home directory and its ``apps/`` (owner-only) if missing."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.apps_dir.mkdir(exist_ok=True, mode=0o700)
        return self


def resolve_home(explicit: str | os.PathLike[str] | None = None) -> Home:
    """The home to use: ``explicit``, else ``$KAISEC_HOME``, else the user data dir."""
    if explicit:
        return Home(Path(explicit).expanduser().resolve())
    env = os.environ.get("KAISEC_HOME")
    if env:
        return Home(Path(env).expanduser().resolve())
    import platformdirs  # only here: most runs name their home, and start-up counts

    return Home(Path(platformdirs.user_data_dir("kaisec", appauthor=False)))
