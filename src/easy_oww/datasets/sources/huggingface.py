"""A Hugging Face folder (``hf_repo`` + ``hf_folder``): one download per file in it.

The folder is listed through the Hub's tree API (paginated with ``Link: <…>; rel="next"``);
the listing gives each file's size and hash (``lfs.oid`` is a sha256; a non-LFS file's
``oid`` is a git blob sha1). ``HF_ENDPOINT`` points it at a mirror; ``HF_TOKEN`` goes to
the Hub host only, never to the CDN it redirects to.
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
from easy_oww.errors import DownloadError
from easy_oww.hashes import KnownHash

HF_DEFAULT_ENDPOINT = "https://huggingface.co"
# The Hub's repository types, as its URLs spell them; huggingface_hub's singular names too.
REPO_TYPES = {"datasets": "datasets", "models": "models", "spaces": "spaces",
              "dataset": "datasets", "model": "models", "space": "spaces"}
_LINK_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')


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


@dataclass(frozen=True)
class HuggingFaceFolder(Source):
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
            raise SourceEntryError("hf_folder", "missing: the folder of the repository to list")
        repo_type = table.get("hf_repo_type", "datasets")
        if repo_type not in REPO_TYPES:
            raise SourceEntryError("hf_repo_type", f"{repo_type!r} is not a Hub repository "
                                   "type; use 'datasets', 'models' or 'spaces'")
        return cls(repo=table["hf_repo"], folder=table["hf_folder"],
                   revision=table.get("hf_revision", "main"), repo_type=REPO_TYPES[repo_type])

    @property
    def listing_id(self) -> str:
        # Not the endpoint: a mirror (HF_ENDPOINT) serves the same repository, and --status
        # must read the cached listing whatever the environment says today.
        return f"hf:{self.repo_type}:{self.repo}:{self.revision}:{self.folder}"

    def auth_headers(self) -> dict[str, str]:
        return hf_auth_headers()

    def resolve(self, entry: FileEntry, dataset: str, listing: ListingSlot, *, online: bool
                ) -> list[ResolvedFile] | None:
        items = listing.get(self.listing_id, self.fetch, online=online)
        return None if items is None else self.files(entry, dataset, items)

    def fetch(self, http: JsonGetter) -> list[dict[str, Any]]:
        """Every page of the folder's recursive tree listing."""
        url: str | None = (f"{hf_endpoint()}/api/{self.repo_type}/{self.repo}/tree/"
                           f"{quote(self.revision, safe='')}/{self.folder}?recursive=true")
        items: list[dict[str, Any]] = []
        while url:
            page, link = http.get_json(url, hf_auth_headers())
            if not isinstance(page, list):
                raise DownloadError(f"listing {url}: expected a JSON list of files")
            items.extend(page)
            match = _LINK_NEXT.search(link or "")
            url = urljoin(url, match.group(1)) if match else None
        return items

    def files(self, entry: FileEntry, dataset: str, items: list[dict[str, Any]]
              ) -> list[ResolvedFile]:
        folder = PurePosixPath(self.folder)
        base = hf_endpoint()
        prefix = "" if self.repo_type == "models" else f"/{self.repo_type}"
        out = []
        for item in items:
            if not isinstance(item, dict) or item.get("type") != "file":
                continue
            remote_path = PurePosixPath(str(item.get("path")))
            if not remote_path.is_relative_to(folder) or ".." in remote_path.parts:
                raise DownloadError(f"{dataset}: the listing names an unsafe path "
                                    f"{item.get('path')!r}; refusing it")
            relative = remote_path.relative_to(folder)
            lfs = item.get("lfs") or {}
            if lfs.get("oid"):
                known: KnownHash | None = KnownHash("sha256", str(lfs["oid"]))
                size = int(lfs.get("size", item.get("size", 0)))
            else:
                known = KnownHash("gitsha1", str(item["oid"])) if item.get("oid") else None
                size = int(item.get("size", 0))
            url = (f"{base}{prefix}/{self.repo}/resolve/"
                   f"{quote(self.revision, safe='')}/{quote(str(remote_path))}")
            out.append(ResolvedFile(dataset, str(PurePosixPath(entry.path) / relative), url,
                                    size, known, entry, auth_host=urlsplit(base).hostname))
        return sorted(out, key=lambda f: f.path)
