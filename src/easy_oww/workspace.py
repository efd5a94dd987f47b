"""Where things live: the workspace folder, its layout, and the remembered choice of `init`.

Resolution order: an explicit path (``--workspace``), ``EASY_OWW_WORKSPACE``, the path
remembered by ``easy-oww init`` in ``config.toml`` under the user's config folder, and
finally ``~/.easy-oww``.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from easy_oww.atomic import atomic_write_text
from easy_oww.errors import ConfigError

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ENV_WORKSPACE = "EASY_OWW_WORKSPACE"
ENV_CONFIG_DIR = "EASY_OWW_CONFIG_DIR"  # lets tests and portable installs keep config elsewhere
DEFAULT_WORKSPACE = Path("~/.easy-oww")


def config_dir() -> Path:
    override = os.environ.get(ENV_CONFIG_DIR)
    return Path(override) if override else Path(platformdirs.user_config_dir("easy-oww"))


def config_file() -> Path:
    return config_dir() / "config.toml"


def state_dir() -> Path:
    """Per-user state shared by every workspace (e.g. the Freesound request budget)."""
    override = os.environ.get(ENV_CONFIG_DIR)
    return Path(override) / "state" if override else Path(platformdirs.user_state_dir("easy-oww"))


def _remembered_workspace() -> Path | None:
    path = config_file()
    if not path.exists():
        return None
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}); fix or delete it") from None
    value = data.get("workspace")
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{path}: key 'workspace' must be a non-empty string")
    return Path(value)


def remember_workspace(root: Path) -> Path:
    """Record `root` as the default workspace; returns the config file written."""
    path = config_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    # json.dumps gives a valid TOML basic string for any path (quotes and backslashes escaped).
    atomic_write_text(path, f"workspace = {json.dumps(str(root))}\n")
    return path


def resolve_root(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The workspace folder: `explicit` (--workspace), else $EASY_OWW_WORKSPACE, else the one
    `init` remembered, else ~/.easy-oww. A file in its place is refused, naming where the
    path came from, before any command reads or writes under it."""
    remembered = None if explicit or os.environ.get(ENV_WORKSPACE) else _remembered_workspace()
    if explicit:
        chosen, source = Path(explicit), "--workspace"
    elif os.environ.get(ENV_WORKSPACE):
        chosen, source = Path(os.environ[ENV_WORKSPACE]), f"${ENV_WORKSPACE}"
    elif remembered is not None:
        chosen, source = remembered, f"the workspace remembered in {config_file()}"
    else:
        chosen, source = DEFAULT_WORKSPACE, "the default workspace"
    root = chosen.expanduser().absolute()
    blocker = _existing_ancestor(root)
    if not blocker.is_dir():
        what = "is a file" if blocker == root else f"is inside {blocker}, which is a file"
        raise ConfigError(f"the workspace {root} (from {source}) {what}, not a folder; "
                          "choose a folder with --workspace or EASY_OWW_WORKSPACE")
    return root


@dataclass(frozen=True)
class Workspace:
    root: Path

    @classmethod
    def resolve(cls, explicit: str | os.PathLike[str] | None = None) -> "Workspace":
        return cls(resolve_root(explicit))

    @property
    def datasets_dir(self) -> Path:
        return self.root / "datasets"

    @property
    def cache_dir(self) -> Path:
        return self.root / ".cache"

    @property
    def locks_dir(self) -> Path:
        return self.cache_dir / "locks"

    @property
    def library_dir(self) -> Path:
        return self.root / "freesound_library"

    @property
    def user_catalog(self) -> Path:
        return self.root / "datasets.toml"

    def create(self) -> None:
        for folder in (self.datasets_dir, self.cache_dir, self.locks_dir, self.library_dir):
            folder.mkdir(parents=True, exist_ok=True)


@dataclass(frozen=True)
class DriveInfo:
    mountpoint: str
    fstype: str
    free_bytes: int
    total_bytes: int

    @property
    def max_file_bytes(self) -> int | None:
        """Largest single file the filesystem can hold, where it is small enough to matter."""
        return FILE_SIZE_LIMITS.get(self.fstype.lower())


# FAT32 stores file sizes in 32 bits; FAT16 likewise (its volumes are smaller anyway).
FILE_SIZE_LIMITS = {
    "vfat": 2**32 - 1,
    "fat": 2**32 - 1,
    "fat32": 2**32 - 1,
    "msdos": 2**32 - 1,
    "msdosfs": 2**32 - 1,
    "fuse.fusefat": 2**32 - 1,
}


def _existing_ancestor(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def drive_info(path: Path) -> DriveInfo:
    """Free space and filesystem type of the drive that holds (or will hold) `path`."""
    import psutil  # 25 ms to import; only commands that look at the drive need it

    anchor = _existing_ancestor(Path(path))
    usage = shutil.disk_usage(anchor)
    real = os.path.realpath(anchor)
    best_mount, best_type = "/", "unknown"
    for part in psutil.disk_partitions(all=True):
        mount = part.mountpoint
        inside = real == mount or real.startswith(mount.rstrip(os.sep) + os.sep)
        if inside and len(mount) >= len(best_mount):
            best_mount, best_type = mount, part.fstype
    return DriveInfo(best_mount, best_type or "unknown", usage.free, usage.total)
