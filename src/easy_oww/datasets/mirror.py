"""Mirrors: another workspace's verified datasets, tried before the origin.

Serving side: `WorkspaceShelf` is what `easy-oww mirror serve` may hand out: the files the
workspace's manifest records (each hash-checked when it was downloaded or unpacked), still
at their recorded size, inside the datasets folder. Nothing else: no part file, no file of a
failed check, no file a link leads out of the tree to.

Using side: `parse_mirror` turns what a user names (``--mirror``, ``EASY_OWW_MIRROR``) into
a `Mirror`: the ``http(s)://`` address of a `mirror serve`, a folder (``file:///path`` or a
plain path) that is another workspace's root, or an ``s3://bucket/prefix`` that `easy-oww
mirror push` filled (transfer/s3.py). All have one layout, ``<root>/datasets/<path>``.
`MirrorRoutes.fetch` tries them in order for one file, before the origin:

- only for a file whose hash the catalog (or the source's listing) knows: a mirror's own word
  about a file is no proof, so a file without a known hash always comes from the origin;
- a mirror gets no credentials (HF_TOKEN goes to the Hub's host only, as before);
- the bytes pass the same checks as the origin's (size, hash, format); a mirror that serves
  anything else is skipped for that file and the next route is asked, and nothing of it is
  kept; one that cannot be reached is skipped for the rest of the run.
"""

from __future__ import annotations

import dataclasses
import os
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from stat import S_ISREG
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from easy_oww.datasets.cache import CacheManager
from easy_oww.errors import BadInputError, EasyOwwError, IntegrityError, NetworkError
from easy_oww.progress import NullProgress
from easy_oww.transfer.fetch import Fetcher, FetchOptions, FetchRequest, FetchResult
from easy_oww.transfer.local import copy_verified
from easy_oww.transfer.retry import RetryableError
from easy_oww.transfer.s3 import S3Bucket, S3Location, S3StoreError
from easy_oww.transfer.serve import NotServed, Servable

ENV_MIRROR = "EASY_OWW_MIRROR"
INDEX_FORMAT = 1
_SEPARATORS = re.compile(r"[\s,]+")


class MirrorSpecError(BadInputError):
    """A mirror the user named is not one (unknown scheme, no datasets/ folder)."""


@dataclass(frozen=True)
class Mirror:
    """One mirror: an HTTP base URL, a folder or a bucket, all holding ``datasets/<path>``."""

    label: str  # the URL (no trailing slash) or the folder's absolute path: the manifest's "from"
    base_url: str | None = None
    folder: Path | None = None
    s3: S3Location | None = None

    def route(self, rel: str) -> str | Path:
        """Where this mirror keeps the file that lands at `rel` under datasets/ (for a
        bucket, the object's key)."""
        if self.folder is not None:
            return self.folder / "datasets" / rel
        if self.s3 is not None:
            return self.s3.dataset_key(rel)
        return f"{self.base_url}/datasets/{quote(rel)}"


def parse_mirror(spec: str) -> Mirror:
    """A mirror from ``http(s)://host[:port][/prefix]``, ``file:///path``, a folder path or
    ``s3://bucket[/prefix]``; MirrorSpecError (one line, exit 2) for anything else, and for a
    bucket when the S3 extra or the credentials are missing."""
    text = spec.strip()
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme == "s3":
        try:
            location = S3Location.parse(text)
            S3Bucket(location).check_credentials()  # no request: the chain is looked at
        except BadInputError as exc:
            raise MirrorSpecError(f"mirror {spec!r}: {exc}") from None
        return Mirror(label=location.url, s3=location)
    if scheme in ("http", "https"):
        if not parts.hostname or parts.query or parts.fragment:
            raise MirrorSpecError(f"mirror {spec!r}: expected http://HOST[:PORT][/PREFIX], the "
                                  "address `easy-oww mirror serve` prints")
        return Mirror(label=text.rstrip("/"), base_url=text.rstrip("/"))
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise MirrorSpecError(f"mirror {spec!r}: a file:// mirror is a folder on this "
                                  "machine (file:///path); mount the other machine's drive")
        folder = Path(unquote(parts.path))
    elif len(scheme) > 1:  # (one letter is a Windows drive: C:\...)
        raise MirrorSpecError(f"mirror {spec!r}: {scheme}:// mirrors are not supported; use "
                              "http(s)://, file:///path, a folder path or s3://")
    else:
        folder = Path(text).expanduser()
    folder = folder.absolute()
    if not (folder / "datasets").is_dir():
        raise MirrorSpecError(f"mirror {spec!r}: {folder} has no datasets/ folder; name the "
                              "root of another easy-oww workspace (the folder that holds "
                              "datasets/)")
    return Mirror(label=str(folder), folder=folder)


def split_mirrors(value: str | None) -> list[str]:
    """``EASY_OWW_MIRROR``'s mirrors: separated by whitespace or commas (a folder whose path
    holds either is named with --mirror, or as a file:// URL with %20 / %2C)."""
    return [part for part in _SEPARATORS.split(value or "") if part]


def chosen_mirrors(given: Sequence[str], environ: dict[str, str] | None = None
                   ) -> list[Mirror]:
    """The mirrors of a run: those given with --mirror, else EASY_OWW_MIRROR's."""
    env = os.environ if environ is None else environ
    specs = list(given) or split_mirrors(env.get(ENV_MIRROR))
    mirrors: list[Mirror] = []
    for spec in specs:
        mirror = parse_mirror(spec)
        if mirror not in mirrors:
            mirrors.append(mirror)
    return mirrors


# -- serving ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class VerifiedFile:
    dataset: str
    path: str  # relative to datasets/, '/'-separated
    size: int
    hash: str


def _safe_relative(rel: str) -> bool:
    """A plain relative path inside the tree: no '..', '.', empty part, backslash or NUL."""
    if not rel or "\\" in rel or "\0" in rel or rel.startswith("/"):
        return False
    return all(part not in ("", ".", "..") for part in rel.split("/"))


def verified_files(cache: CacheManager, manifest: dict[str, Any] | None = None
                   ) -> dict[str, VerifiedFile]:
    """Every file the manifest records with a size and hash, under the datasets folder, still
    a regular file of that size (whose real path, links followed, stays in the tree)."""
    manifest = manifest if manifest is not None else cache.load()
    root = os.path.realpath(cache.datasets_dir)
    out: dict[str, VerifiedFile] = {}
    for key, entry in sorted(manifest["datasets"].items()):
        for rel, record in sorted((entry.get("files") or {}).items()):
            size, known = record.get("size"), record.get("hash")
            if record.get("removed") or not isinstance(size, int) or not isinstance(known, str):
                continue
            if not _safe_relative(rel) or not _inside(root, cache.datasets_dir / rel):
                continue
            try:
                stat = (cache.datasets_dir / rel).stat()
            except OSError:
                continue
            if stat.st_size == size and _is_regular(stat.st_mode):
                out[rel] = VerifiedFile(key, rel, size, known)
    return out


def _inside(root: str, path: Path) -> bool:
    real = os.path.realpath(path)
    return real.startswith(root + os.sep)


def _is_regular(mode: int) -> bool:
    return S_ISREG(mode)


class WorkspaceShelf:
    """What `mirror serve` hands out for one workspace. The list follows the manifest: it is
    read again when the manifest changes (a download finishing while serving), and every
    request checks its file again (still in the tree, still at its recorded size)."""

    def __init__(self, cache: CacheManager) -> None:
        self.cache = cache
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._files: dict[str, VerifiedFile] = {}
        self._complete: dict[str, bool] = {}
        self._root = os.path.realpath(cache.datasets_dir)

    def files(self) -> dict[str, VerifiedFile]:
        try:
            stat = self.cache.manifest_path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
        except OSError:
            stamp = (0, 0)
        with self._lock:
            if stamp != self._stamp:
                manifest = self.cache.load()
                self._files = verified_files(self.cache, manifest)
                self._complete = {key: bool(entry.get("complete"))
                                  for key, entry in manifest["datasets"].items()}
                self._stamp = stamp
            return self._files

    def find(self, rel: str) -> Servable:
        if not _safe_relative(rel):
            raise NotServed(404, f"{rel}: not a path under datasets/")
        found = self.files().get(rel)
        if found is None:
            raise NotServed(404, f"{rel}: not a verified file of this workspace")
        path = self.cache.datasets_dir / rel
        if not _inside(self._root, path):
            raise NotServed(403, f"{rel}: leads out of the datasets folder")
        try:
            stat = path.stat()
        except OSError:
            raise NotServed(404, f"{rel}: gone since it was verified") from None
        if stat.st_size != found.size or not _is_regular(stat.st_mode):
            raise NotServed(404, f"{rel}: changed since it was verified")
        return Servable(path=path, size=found.size, hash=found.hash)

    def index(self) -> dict[str, Any]:
        """``{"easy_oww_mirror": 1, "datasets": [{"key", "complete", "files": [{"path",
        "size", "hash"}]}]}``; a file's URL is ``/datasets/<path>``."""
        files = self.files()
        by_key: dict[str, list[dict[str, Any]]] = {}
        for item in files.values():
            by_key.setdefault(item.dataset, []).append(
                {"path": item.path, "size": item.size, "hash": item.hash})
        with self._lock:
            complete = dict(self._complete)
        return {"easy_oww_mirror": INDEX_FORMAT,
                "datasets": [{"key": key, "complete": complete.get(key, False), "files": rows}
                             for key, rows in sorted(by_key.items())]}


def served_from_mirrors(manifest: dict[str, Any], keys: Sequence[str] | None = None
                        ) -> dict[str, dict[str, tuple[int, int]]]:
    """Which mirror served what, from the manifest's ``"from"`` fields: dataset -> mirror ->
    (files, bytes)."""
    out: dict[str, dict[str, tuple[int, int]]] = {}
    for key, entry in sorted(manifest["datasets"].items()):
        if keys is not None and key not in keys:
            continue
        for record in (entry.get("files") or {}).values():
            mirror = record.get("from")
            if not isinstance(mirror, str):
                continue
            files, size = out.setdefault(key, {}).get(mirror, (0, 0))
            out[key][mirror] = (files + 1, size + int(record.get("size") or 0))
    return out


# -- using ------------------------------------------------------------------------------------
class MirrorRoutes:
    """The mirrors of one download run, tried in order for each file before the origin."""

    def __init__(self, mirrors: Sequence[Mirror], options: FetchOptions, *,
                 progress: NullProgress, lock_dir: Path, cancel: threading.Event) -> None:
        self.mirrors = list(mirrors)
        self.progress = progress
        self.lock_dir = lock_dir
        self.lock_timeout = options.lock_timeout
        self.verbose = options.verbose
        self.cancel = cancel
        # A mirror is a convenience: one that does not answer is given up on quickly (the
        # origin is still there), not after the origin's minute of backoff.
        self.fetcher = Fetcher(dataclasses.replace(
            options, attempts=min(options.attempts, 2), offline_attempts=1,
            connect_timeout=min(options.connect_timeout, 5.0)),
            progress=progress, lock_dir=lock_dir)
        self.fetcher.cancel = cancel
        self._dead: set[str] = set()
        self._lock = threading.Lock()
        self._buckets = {m.label: S3Bucket(m.s3) for m in self.mirrors if m.s3 is not None}

    def _give_up(self, mirror: Mirror, why: str) -> None:
        """Not asked again in this run; said once (files fetched at once may all find it)."""
        with self._lock:
            first = mirror.label not in self._dead
            self._dead.add(mirror.label)
        if first:
            self.progress.log(why)

    def fetch(self, request: FetchRequest, rel: str,
              record: Callable[[FetchResult, Mirror], None]) -> FetchResult | None:
        """`request`'s file from the first mirror whose bytes pass every check, recorded with
        `record`; None when none did (the caller asks the origin). Never for a request
        without a known hash."""
        if request.hash is None:
            return None
        label = request.label or request.dest.name
        for mirror in self.mirrors:
            with self._lock:
                if mirror.label in self._dead:
                    continue
            route = mirror.route(rel)
            routed = dataclasses.replace(
                request, url=str(route), auth_headers={}, auth_host=None, fallback_urls=(),
                host_connections=None,
                on_complete=lambda result, m=mirror: record(result, m))
            try:
                if isinstance(route, Path):
                    if not route.is_file():
                        continue  # this mirror does not have it
                    return copy_verified(routed, route, lock_dir=self.lock_dir,
                                         lock_timeout=self.lock_timeout, cancel=self.cancel,
                                         progress=self.progress)
                if mirror.s3 is not None:
                    return self._buckets[mirror.label].fetch_verified(
                        routed, str(route), lock_dir=self.lock_dir,
                        lock_timeout=self.lock_timeout, cancel=self.cancel,
                        progress=self.progress)
                return self.fetcher.fetch(routed)
            except NetworkError:
                # (the error's own advice, "run again to resume", is not for this)
                self._give_up(mirror, f"mirror {mirror.label} cannot be reached; not asked "
                                      "again in this run")
            except S3StoreError as exc:  # the bucket is missing, or refuses these credentials
                self._give_up(mirror, f"mirror {exc}; not asked again in this run")
            except IntegrityError as exc:
                self.progress.log(f"{label}: mirror {mirror.label} served bytes that fail the "
                                  f"catalog's check ({exc}); asking the next source")
            except (EasyOwwError, RetryableError) as exc:
                if self.verbose or getattr(exc, "status", None) != 404:
                    self.progress.log(f"{label}: mirror {mirror.label}: {exc}; asking the "
                                      "next source")
        return None
