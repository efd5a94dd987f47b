"""Hugging Face sources: a folder (``hf_repo`` + ``hf_folder``: one download per file in it)
and one file (``hf_repo`` + ``hf_file``), both at a revision (``hf_revision``).

A folder is listed through the Hub's tree API (paginated with ``Link: <…>; rel="next"``);
the listing gives each file's size and hash (``lfs.oid`` is a sha256; a non-LFS file's
``oid`` is a git blob sha1). A single file is fetched from
``{HF_ENDPOINT}/{repo_type}/{repo}/resolve/{revision}/{path}``; its size and hash are the
catalog's when it gives them, otherwise those the tree listing of the file's folder states
at the revision. When both exist they must agree: the catalog's hash is a cross-check of the
Hub's, and a disagreement refuses the file, naming both values.

A revision that is a 40-hex commit is *pinned*: a commit never changes, so neither does the
tree listing at that commit, and a size and hash taken from it (and cached for offline
``--status``) stay true for as long as the Hub serves the commit. Anything else (``main``, a
tag, a branch) is *floating*: it follows whatever the repository's owner pushes, and a hash
taken from today's listing says nothing about tomorrow's file. ``doctor`` says which sources
are which, and for pinned ones whether ``main`` has moved on and the pinned files still
answer.

``HF_ENDPOINT`` points both at a mirror; ``HF_TOKEN`` goes to the Hub host only, never to
the CDN it redirects to.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, ClassVar
from urllib.parse import quote, urljoin, urlsplit

from easy_oww.datasets.sources.base import (
    FileEntry,
    JsonGetter,
    ListingSlot,
    ResolvedFile,
    Source,
    SourceEntryError,
)
from easy_oww.errors import DownloadError, NotFoundError
from easy_oww.hashes import KnownHash

HF_DEFAULT_ENDPOINT = "https://huggingface.co"
# The Hub's repository types, as its URLs spell them; huggingface_hub's singular names too.
REPO_TYPES = {"datasets": "datasets", "models": "models", "spaces": "spaces",
              "dataset": "datasets", "model": "models", "space": "spaces"}
_LINK_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')
_COMMIT = re.compile(r"[0-9a-f]{40}")


def hf_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", HF_DEFAULT_ENDPOINT).rstrip("/")


def effective_url(url: str) -> str:
    """Point huggingface.co URLs at ``HF_ENDPOINT`` when the user set one (a mirror)."""
    if url.startswith(HF_DEFAULT_ENDPOINT + "/"):
        return hf_endpoint() + url[len(HF_DEFAULT_ENDPOINT):]
    return url


def hf_auth_headers() -> dict[str, str]:
    token = os.environ.get("HF_TOKEN")
    return {"Authorization": f"Bearer {token}"} if token else {}


def is_commit(revision: str) -> bool:
    """A full commit id (40 hex digits): what makes a Hub source pinned."""
    return _COMMIT.fullmatch(revision) is not None


def hub_commit(http: JsonGetter, repo_type: str, repo: str, revision: str) -> str:
    """The commit `revision` names now (``main`` → where main points), from the Hub's
    ``/api/{repo_type}/{repo}/revision/{revision}`` (what huggingface_hub's
    ``HfApi.dataset_info(repo_id, revision=...)`` reads; its ``sha`` is the commit)."""
    url = f"{hf_endpoint()}/api/{repo_type}/{repo}/revision/{quote(revision, safe='')}"
    info, _ = http.get_json(url, hf_auth_headers())
    sha = info.get("sha") if isinstance(info, dict) else None
    if not isinstance(sha, str) or not is_commit(sha):
        raise DownloadError(f"{url}: the Hub's answer names no commit ('sha')")
    return sha


def _listed(item: dict[str, Any]) -> tuple[int, KnownHash | None]:
    """The size and hash a tree listing states for one file."""
    lfs = item.get("lfs") or {}
    if lfs.get("oid"):
        return int(lfs.get("size", item.get("size", 0))), KnownHash("sha256", str(lfs["oid"]))
    known = KnownHash("gitsha1", str(item["oid"])) if item.get("oid") else None
    return int(item.get("size", 0)), known


class HubSource:
    """What the two Hub kinds share: a repository at a revision, on ``HF_ENDPOINT``."""

    repo: str
    revision: str
    repo_type: str

    @property
    def pinned(self) -> bool:
        """True when `revision` is a commit: the files and their listing cannot change."""
        return is_commit(self.revision)

    def auth_headers(self) -> dict[str, str]:
        return hf_auth_headers()

    def resolve_url(self, path: str) -> str:
        """Where the Hub serves `path` of the repository at the revision."""
        prefix = "" if self.repo_type == "models" else f"/{self.repo_type}"
        return (f"{hf_endpoint()}{prefix}/{self.repo}/resolve/"
                f"{quote(self.revision, safe='')}/{quote(path)}")

    def tree_pages(self, http: JsonGetter, folder: str, *, recursive: bool
                   ) -> list[dict[str, Any]]:
        """Every page of the tree listing of `folder` ('' for the top) at the revision."""
        url: str | None = (f"{hf_endpoint()}/api/{self.repo_type}/{self.repo}/tree/"
                           f"{quote(self.revision, safe='')}" + (f"/{folder}" if folder else "")
                           + ("?recursive=true" if recursive else ""))
        items: list[dict[str, Any]] = []
        while url:
            page, link = http.get_json(url, hf_auth_headers())
            if not isinstance(page, list):
                raise DownloadError(f"listing {url}: expected a JSON list of files")
            items.extend(page)
            match = _LINK_NEXT.search(link or "")
            url = urljoin(url, match.group(1)) if match else None
        return items


def _repo_type(table: Mapping[str, Any]) -> str:
    repo_type = table.get("hf_repo_type", "datasets")
    if repo_type not in REPO_TYPES:
        raise SourceEntryError("hf_repo_type", f"{repo_type!r} is not a Hub repository "
                               "type; use 'datasets', 'models' or 'spaces'")
    return REPO_TYPES[repo_type]


@dataclass(frozen=True)
class HuggingFaceFolder(HubSource, Source):
    kind: ClassVar[str] = "hf_folder"
    naming_key: ClassVar[str] = "hf_repo"
    keys: ClassVar[Mapping[str, type]] = {
        "hf_repo": str, "hf_revision": str, "hf_folder": str, "hf_repo_type": str}
    hint: ClassVar[str] = "hf_repo (+ hf_folder)"
    lands_in_folder: ClassVar[bool] = True

    repo: str
    folder: str
    revision: str = "main"
    repo_type: str = "datasets"

    @classmethod
    def from_table(cls, table: Mapping[str, Any]) -> HuggingFaceFolder:
        if "hf_repo" not in table:
            raise SourceEntryError("hf_repo", "missing: the repository, e.g. 'owner/name'")
        if "hf_folder" not in table:
            raise SourceEntryError("hf_folder", "missing: the folder of the repository to list "
                                   "(or hf_file, for one file)")
        return cls(repo=table["hf_repo"], folder=table["hf_folder"],
                   revision=table.get("hf_revision", "main"), repo_type=_repo_type(table))

    @property
    def listing_id(self) -> str:
        # Not the endpoint: a mirror (HF_ENDPOINT) serves the same repository, and --status
        # must read the cached listing whatever the environment says today.
        return f"hf:{self.repo_type}:{self.repo}:{self.revision}:{self.folder}"

    def resolve(self, entry: FileEntry, dataset: str, listing: ListingSlot, *, online: bool
                ) -> list[ResolvedFile] | None:
        items = listing.get(self.listing_id, self.fetch, online=online)
        return None if items is None else self.files(entry, dataset, items)

    def fetch(self, http: JsonGetter) -> list[dict[str, Any]]:
        """Every page of the folder's recursive tree listing."""
        return self.tree_pages(http, self.folder, recursive=True)

    def files(self, entry: FileEntry, dataset: str, items: list[dict[str, Any]]
              ) -> list[ResolvedFile]:
        folder = PurePosixPath(self.folder)
        host = urlsplit(hf_endpoint()).hostname
        out = []
        for item in items:
            if not isinstance(item, dict) or item.get("type") != "file":
                continue
            remote_path = PurePosixPath(str(item.get("path")))
            if not remote_path.is_relative_to(folder) or ".." in remote_path.parts:
                raise DownloadError(f"{dataset}: the listing names an unsafe path "
                                    f"{item.get('path')!r}; refusing it")
            relative = remote_path.relative_to(folder)
            size, known = _listed(item)
            out.append(ResolvedFile(dataset, str(PurePosixPath(entry.path) / relative),
                                    self.resolve_url(str(remote_path)), size, known, entry,
                                    auth_host=host))
        return sorted(out, key=lambda f: f.path)


class ListingDisagrees(DownloadError):
    """The catalog's size or hash of a Hub file is not what the Hub lists at the revision."""


@dataclass(frozen=True)
class HuggingFaceFile(HubSource, Source):
    kind: ClassVar[str] = "hf_file"
    # An entry with hf_repo and hf_file is this kind, not a folder: kind_of lets a kind whose
    # keys include another named kind's naming key (hf_repo) win over it.
    naming_key: ClassVar[str] = "hf_file"
    keys: ClassVar[Mapping[str, type]] = {
        "hf_repo": str, "hf_revision": str, "hf_file": str, "hf_repo_type": str}
    hint: ClassVar[str] = "hf_repo + hf_file"

    repo: str
    path: str  # the file's path in the repository
    revision: str = "main"
    repo_type: str = "datasets"

    @classmethod
    def from_table(cls, table: Mapping[str, Any]) -> HuggingFaceFile:
        if "hf_repo" not in table:
            raise SourceEntryError("hf_repo", "missing: the repository, e.g. 'owner/name'")
        path = table.get("hf_file", "")
        pure = PurePosixPath(path)
        if not path.strip("/") or pure.is_absolute() or ".." in pure.parts or "\\" in path:
            raise SourceEntryError("hf_file", f"{path!r} is not a file's path in the "
                                   "repository (e.g. 'data/bal_train09.tar')")
        return cls(repo=table["hf_repo"], path=str(pure),
                   revision=table.get("hf_revision", "main"), repo_type=_repo_type(table))

    @property
    def folder(self) -> str:
        """The folder whose listing states the file's size and hash ('' for the top)."""
        parent = str(PurePosixPath(self.path).parent)
        return "" if parent == "." else parent

    @property
    def listing_id(self) -> str:
        return f"hf-file:{self.repo_type}:{self.repo}:{self.revision}:{self.path}"

    def resolve(self, entry: FileEntry, dataset: str, listing: ListingSlot, *, online: bool
                ) -> list[ResolvedFile] | None:
        # A catalog that gives both size and hash needs no listing (offline as online); the
        # Hub's X-Linked-Etag is still checked against the hash before a byte is fetched.
        complete = entry.size is not None and entry.hash is not None
        fetch = online and not complete
        listed = listing.get(self.listing_id, self.fetch, online=fetch)
        if listed is None and not complete:
            return None
        size, known = entry.size, entry.hash
        if listed is not None:
            # A listing just fetched refuses a disagreeing catalog (download, doctor); one
            # read back offline only fills gaps, so `--status` still shows every dataset.
            size, known = self.checked(entry, *_listed(listed), refuse=fetch)
        return [ResolvedFile(dataset, entry.path, self.resolve_url(self.path), size, known,
                             entry, auth_host=urlsplit(hf_endpoint()).hostname)]

    def fetch(self, http: JsonGetter) -> dict[str, Any]:
        """The file's own item of its folder's listing at the revision (only it is kept)."""
        for item in self.tree_pages(http, self.folder, recursive=False):
            if isinstance(item, dict) and item.get("type") == "file" and \
                    item.get("path") == self.path:
                return item
        raise NotFoundError(f"{self.repo} has no file {self.path!r} at revision "
                            f"{self.revision!r}; check the catalog entry (hf_file, hf_revision)")

    def checked(self, entry: FileEntry, listed_size: int, listed_hash: KnownHash | None, *,
                refuse: bool = True) -> tuple[int, KnownHash | None]:
        """The catalog's size and hash where it gives them, else the listing's; with
        `refuse`, ListingDisagrees when both give one and they differ."""
        where = f"{self.repo} lists {self.path} at {self.revision}"
        size = listed_size if entry.size is None else entry.size
        if refuse and size != listed_size:
            raise ListingDisagrees(f"{where} with {listed_size:,} bytes, the catalog says "
                                   f"{size:,}; refusing it: correct the catalog entry")
        if entry.hash is None:
            return size, listed_hash
        if refuse and listed_hash is not None and listed_hash.algorithm == \
                entry.hash.algorithm and listed_hash != entry.hash:
            raise ListingDisagrees(f"{where} with {listed_hash}, the catalog says "
                                   f"{entry.hash}; refusing it: correct the catalog entry")
        return size, entry.hash
