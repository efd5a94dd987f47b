"""`easy-oww doctor`: the first-run check. For the chosen datasets it asks every source what
it would serve, without downloading (a one-byte ranged GET), then looks at the workspace, the
Hugging Face token and, when asked, the Freesound key.

It is also how anyone with a network checks the real services against what easy-oww
assumes: that the server still has the catalog's size and hash, honours ``Range`` and
answers from the host we think. For Hugging Face sources it also says which are pinned to a
commit and which follow a branch, and for pinned ones whether ``main`` has moved on and the
pinned files still answer. It sits above both halves because it reports on both.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from easy_oww.datasets.catalog import Dataset
from easy_oww.datasets.engine import DatasetEngine
from easy_oww.datasets.sources import (
    HubSource,
    HuggingFaceFile,
    ResolvedFile,
    hf_auth_headers,
    hub_commit,
)
from easy_oww.datasets.sources.http import JsonClient
from easy_oww.errors import DownloadError, EasyOwwError, NetworkError, NotFoundError
from easy_oww.freesound.api import (
    ENV_API_KEY,
    ENV_API_URL,
    FreesoundClient,
    RateBudget,
    read_api_key,
)
from easy_oww.freesound.errors import KeyRefusedError
from easy_oww.progress import human_bytes
from easy_oww.transfer.fetch import Fetcher, FetchOptions, FetchRequest, Inspection
from easy_oww.transfer.retry import RetryableError, RetryPolicy
from easy_oww.workspace import drive_info

# Short waits: a doctor that hangs for a minute on a dead host is no help. Offline, every
# host is named within about ten seconds.
DOCTOR_OPTIONS = FetchOptions(connections=1, attempts=2, connect_timeout=4.0,
                              read_timeout=8.0, backoff_base=0.2, backoff_max=1.0)
DOCTOR_POLICY = RetryPolicy(attempts=2, backoff_base=0.2, backoff_max=1.0)


@dataclass(frozen=True, kw_only=True)
class SourceCheck:
    """What one catalog entry's server said (for a folder of files: its first file)."""

    dataset: str
    path: str  # where the file lands, relative to the datasets folder
    url: str
    files: int  # files behind this entry (a Hub folder lists many; one is asked)
    reachable: bool
    problem: str | None  # one line when something would stop or spoil the download
    size: int | None = None  # what the server states
    expected_size: int | None = None  # the catalog's or the listing's
    hash: str | None = None  # the catalog's or the listing's, "algo:hex"
    server_hash: str | None = None  # what the server states, "algo:hex"
    hash_agrees: bool | None = None  # None: the server states no hash
    ranges: bool | None = None  # a one-byte ranged GET came back 206
    served_by: str | None = None  # the host the redirects ended at
    not_found: bool = False  # the server answered 404/410 (a fallback route may take over)

    @property
    def ok(self) -> bool:
        return self.reachable and self.problem is None


@dataclass(frozen=True, kw_only=True)
class RevisionCheck:
    """Where one Hugging Face repository's sources stand: pinned to a commit, or following a
    branch. Reported, not blocking: a pinned file that answers 404 already stops the check
    of its source (or its listing) above, which blocks."""

    repo: str
    repo_type: str
    revision: str
    pinned: bool
    datasets: tuple[str, ...]
    line: str  # one line for the report
    main: str | None = None  # the commit main points at now (asked for pinned sources)
    moved_on: bool | None = None  # main is no longer the pinned commit
    probe: str | None = None  # the resolve URL a HEAD asked at the pinned commit
    files_answer: bool | None = None  # False: the pinned files answer 404


@dataclass(frozen=True, kw_only=True)
class WorkspaceCheck:
    root: str
    filesystem: str
    mountpoint: str
    free_bytes: int
    needed_bytes: int | None  # None when a listing could not be read
    max_file_bytes: int | None
    problems: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class FreesoundCheck:
    api_url: str
    key_found: bool
    ok: bool
    problem: str | None
    budget_left: int | None = None


@dataclass(kw_only=True)
class DoctorReport:
    sources: list[SourceCheck] = field(default_factory=list)
    unreachable: dict[str, str] = field(default_factory=dict)  # host -> one line
    listing_errors: dict[str, str] = field(default_factory=dict)  # dataset -> one line
    # dataset -> one line: its own files answer "not found" and its fallback route is taken
    fallbacks: dict[str, str] = field(default_factory=dict)
    revisions: list[RevisionCheck] = field(default_factory=list)
    workspace: WorkspaceCheck | None = None
    hf_token: bool = False
    freesound: FreesoundCheck | None = None

    @property
    def blocking(self) -> list[str]:
        """One line for everything that would stop a download or keep a wrong file."""
        out = [f"{host}: {line}" for host, line in self.unreachable.items()]
        out += list(self.listing_errors.values())
        out += [f"{s.dataset}: {s.path}: {s.problem}" for s in self.sources
                if s.reachable and s.problem and not (s.not_found and s.dataset in self.fallbacks)]
        if self.workspace is not None:
            out += list(self.workspace.problems)
        if self.freesound is not None and not self.freesound.ok and self.freesound.problem:
            out.append(f"Freesound: {self.freesound.problem}")
        return out

    def to_json(self) -> dict[str, Any]:
        return {"ok": not self.blocking, "blocking": self.blocking,
                "sources": [asdict(s) | {"ok": s.ok} for s in self.sources],
                "unreachable": self.unreachable, "listing_errors": self.listing_errors,
                "fallbacks": self.fallbacks,
                "revisions": [asdict(r) for r in self.revisions],
                "workspace": asdict(self.workspace) if self.workspace else None,
                "hf_token": self.hf_token,
                "freesound": asdict(self.freesound) if self.freesound else None}


def _server_hash(inspection: Inspection) -> str | None:
    """The content hash the server states, in our "algo:hex" form: the Hub's X-Linked-Etag
    (the LFS sha256), or an ETag of the form "md5:…" (Zenodo's checksum). A bare 32-hex ETag
    is not taken for an md5: on S3 and its CDNs it is often a multipart hash."""
    if inspection.linked_etag:
        value = inspection.linked_etag.strip('"').lower()
        if len(value) == 64:
            return f"sha256:{value}"
    etag = (inspection.etag or "").strip('"').lower()
    return etag if etag.startswith(("md5:", "sha256:")) else None


def check_source(fetcher: Fetcher, dataset: str, item: ResolvedFile, files: int
                 ) -> SourceCheck:
    """Ask the server for one byte of `item`: reachable, size, hash, ranges, final host."""
    base = {"dataset": dataset, "path": item.path, "url": item.url, "files": files,
            "expected_size": item.size, "hash": item.catalog_hash}
    request = FetchRequest(item.url, Path(os.devnull), item.size, item.hash,
                           auth_headers=item.auth_headers(), auth_host=item.auth_host)
    try:
        seen = fetcher.inspect(request)
    except NetworkError:
        raise  # no route to the host: said once for the host, by the caller
    except DownloadError as exc:  # the server answered, and said no (404, 401, …)
        return SourceCheck(**base, reachable=True, problem=str(exc),
                           not_found=isinstance(exc, NotFoundError))
    problems: list[str] = []
    if item.size is not None and seen.size is not None and seen.size != item.size:
        problems.append(f"the server has {seen.size:,} bytes, the catalog says "
                        f"{item.size:,}: the file changed upstream")
    stated = _server_hash(seen)
    agrees: bool | None = None
    if stated is not None and item.catalog_hash is not None:
        same_algorithm = stated.partition(":")[0] == item.catalog_hash.partition(":")[0]
        agrees = stated == item.catalog_hash if same_algorithm else None
        if agrees is False:
            problems.append(f"the server's hash is {stated}, the catalog's {item.catalog_hash}:"
                            " the file changed upstream")
    return SourceCheck(**base, reachable=True, problem="; ".join(problems) or None,
                       size=seen.size, server_hash=stated, hash_agrees=agrees,
                       ranges=seen.ranges, served_by=urlsplit(seen.final_url).hostname)


def _representatives(files: list[ResolvedFile]) -> list[tuple[ResolvedFile, int]]:
    """One file per catalog entry (a Hub folder of 270 WAVs is asked once), with its count."""
    groups: dict[int, list[ResolvedFile]] = {}
    for item in files:
        groups.setdefault(id(item.entry), []).append(item)
    return [(group[0], len(group)) for group in groups.values()]


def _fallback_line(dataset: Dataset, why: str | None) -> str:
    assert dataset.fallback is not None
    return (f"{dataset.key}: its own files are not found ({why}); `download` takes its "
            f"fallback route: {dataset.fallback.describe()}")


def diagnose(engine: DatasetEngine, datasets: list[Dataset], *, freesound: bool = False,
             freesound_api_url: str | None = None, key_file: str | None = None,
             fetcher: Fetcher | None = None,
             on_check: Callable[[str], None] | None = None) -> DoctorReport:
    """Check every source of `datasets`, then the workspace, HF_TOKEN and (with `freesound`)
    the Freesound key: one request, counted against the day's budget."""
    fetcher = fetcher or Fetcher(DOCTOR_OPTIONS)
    report = DoctorReport(hf_token=bool(os.environ.get("HF_TOKEN")))
    needed: int | None = 0
    manifest = engine.cache.load()
    hub = _HubRepos()
    for dataset in datasets:
        try:
            files = engine.files_of(dataset, online=True) or []
        except NotFoundError as exc:
            if dataset.fallback is None:
                report.listing_errors[dataset.key] = f"{dataset.key}: {exc}"
            else:
                report.fallbacks[dataset.key] = _fallback_line(dataset, str(exc))
            hub.add(dataset, [])
            needed = None
            continue
        except (EasyOwwError, RetryableError) as exc:
            report.listing_errors[dataset.key] = f"{dataset.key}: {exc}"
            hub.add(dataset, [])
            needed = None
            continue
        hub.add(dataset, files)
        for item, count in _representatives(files):
            host = urlsplit(item.url).netloc or item.url
            if host in report.unreachable:
                report.sources.append(SourceCheck(
                    dataset=dataset.key, path=item.path, url=item.url, files=count,
                    reachable=False, problem=report.unreachable[host]))
                continue
            if on_check is not None:
                on_check(f"{dataset.key}: {item.path}")
            started = time.monotonic()
            try:
                check = check_source(fetcher, dataset.key, item, count)
            except NetworkError:
                seconds = time.monotonic() - started
                report.unreachable[host] = (f"cannot be reached (offline, or the host is down); "
                                            f"gave up after {seconds:.0f} s")
                check = SourceCheck(dataset=dataset.key, path=item.path, url=item.url,
                                    files=count, reachable=False,
                                    problem=report.unreachable[host])
            report.sources.append(check)
            if check.not_found and dataset.fallback is not None:
                report.fallbacks.setdefault(dataset.key, _fallback_line(dataset, check.problem))
        # Still to fetch: the catalog's sizes, else what the server just said (one file).
        stated = {c.path: c.size for c in report.sources if c.dataset == dataset.key
                  and c.files == 1}
        for item in files if needed is not None else []:
            size = item.size if item.size is not None else stated.get(item.path)
            if size is None:
                needed = None
                break
            done = size if engine.is_recorded(item, manifest) else engine.bytes_on_disk(
                item, manifest)
            needed += max(0, size - done)
    report.revisions = hub.check(report.unreachable)
    report.workspace = _check_workspace(engine, report, needed)
    if freesound:
        report.freesound = _check_freesound(freesound_api_url, key_file)
    return report


class _HubRepos:
    """The Hugging Face sources of the chosen datasets, one group per repository and
    revision, with a resolve URL of one of their files (a HEAD asks whether it answers)."""

    def __init__(self) -> None:
        self.groups: dict[tuple[str, str, str], tuple[HubSource, list[str], list[str]]] = {}
        self.with_fallback: set[str] = set()  # datasets another route can fetch

    def add(self, dataset: Dataset, files: list[ResolvedFile]) -> None:
        if dataset.fallback is not None:
            self.with_fallback.add(dataset.key)
        for entry in dataset.files:
            source = entry.source
            if not isinstance(source, HubSource):
                continue
            if isinstance(source, HuggingFaceFile):  # its URL is known without a listing
                urls = [source.resolve_url(source.path)]
            else:
                urls = [f.url for f in files if f.entry is entry][:1]
            key = (source.repo_type, source.repo, source.revision)
            _, names, probes = self.groups.setdefault(key, (source, [], []))
            if dataset.key not in names:
                names.append(dataset.key)
            probes.extend(urls)

    def check(self, unreachable: dict[str, str]) -> list[RevisionCheck]:
        http = JsonClient(timeout=DOCTOR_OPTIONS.read_timeout, policy=DOCTOR_POLICY)
        out = []
        for source, names, probes in self.groups.values():
            base = {"repo": source.repo, "repo_type": source.repo_type,
                    "revision": source.revision, "pinned": source.pinned,
                    "datasets": tuple(names)}
            if not source.pinned:
                out.append(RevisionCheck(**base, line=f"{source.repo}: follows "
                                         f"{source.revision} (not pinned)"))
                continue
            host = urlsplit(probes[0]).netloc if probes else ""
            if host in unreachable:  # said once for the host already
                out.append(RevisionCheck(**base, line=f"{source.repo}: pinned "
                                         f"{source.revision[:7]}; {host} {unreachable[host]}"))
                continue
            out.append(_check_pinned(http, source, base, probes[0] if probes else None,
                                     fallback=set(names) <= self.with_fallback))
        return out


def _check_pinned(http: JsonClient, source: HubSource, base: dict[str, Any],
                  probe: str | None, *, fallback: bool = False) -> RevisionCheck:
    """Where main is now against the pinned commit, and a HEAD on one pinned file."""
    pinned = source.revision[:7]
    name = source.repo
    try:
        main = hub_commit(http, source.repo_type, source.repo, "main")
    except (EasyOwwError, RetryableError) as exc:
        return RevisionCheck(**base, line=f"{name}: pinned {pinned}; cannot ask where main is "
                             f"now: {exc}")
    moved_on = main != source.revision
    where = f"main is now {main[:7]}" if moved_on else "which main still is"
    answers: bool | None = None
    status: int | None = None
    if probe is not None:
        try:
            status = http.head_status(probe, hf_auth_headers())
        except (EasyOwwError, RetryableError) as exc:
            return RevisionCheck(**base, main=main, moved_on=moved_on, probe=probe,
                                 line=f"{name}: pinned {pinned}, {where}; cannot ask whether "
                                 f"its files answer: {exc}")
        if status == 404:
            answers = False
        elif 200 <= status < 400:  # the file, or the Hub's redirect to its CDN
            answers = True
    facts = {"main": main, "moved_on": moved_on, "probe": probe, "files_answer": answers}
    if answers is False:
        path = _repo_path(source, probe or "")
        return RevisionCheck(**base, **facts, line=(
            f"{name}: pinned {pinned}" + (f" ({where})" if moved_on else "") + f", but {path} "
            f"answers 404 there: " + (
                f"downloading {', '.join(base['datasets'])} takes its fallback route"
                if fallback else f"downloading {', '.join(base['datasets'])} fails until a "
                "catalog entry pins a revision that has the files")))
    if answers is None and status is not None:
        return RevisionCheck(**base, **facts, line=f"{name}: pinned {pinned}, {where}; its "
                             f"files answer HTTP {status}")
    used = ": the pinned files are used" if moved_on and answers else ""
    return RevisionCheck(**base, **facts, line=f"{name}: pinned {pinned}, {where}{used}")


def _repo_path(source: HubSource, url: str) -> str:
    """The file's path in the repository, from its resolve URL."""
    marker = f"/resolve/{source.revision}/"
    return unquote(url.split(marker, 1)[1]) if marker in url else url


def _check_workspace(engine: DatasetEngine, report: DoctorReport, needed: int | None
                     ) -> WorkspaceCheck:
    drive = drive_info(engine.datasets_dir)
    problems: list[str] = []
    limit = drive.max_file_bytes
    if limit is not None:
        for check in report.sources:
            size = check.size or check.expected_size
            if size is not None and size > limit:
                problems.append(f"{check.dataset}: {check.path} is {human_bytes(size)} but "
                                f"{drive.mountpoint} is {drive.fstype}, which holds files up "
                                "to 4 GiB; reformat it as exFAT, NTFS, APFS or ext4")
    if needed is not None and needed > drive.free_bytes:
        problems.append(f"need {human_bytes(needed)} on {drive.mountpoint}, have "
                        f"{human_bytes(drive.free_bytes)} free")
    root = engine.workspace.root
    probe = root if root.exists() else next((p for p in root.parents if p.exists()), root)
    if not os.access(probe, os.W_OK):
        problems.append(f"{probe} is not writable")
    return WorkspaceCheck(root=str(root), filesystem=drive.fstype, mountpoint=drive.mountpoint,
                          free_bytes=drive.free_bytes, needed_bytes=needed,
                          max_file_bytes=limit, problems=tuple(problems))


def _check_freesound(api_url: str | None, key_file: str | None) -> FreesoundCheck:
    try:
        key = read_api_key(key_file)
    except EasyOwwError as exc:
        where = api_url or os.environ.get(ENV_API_URL) or "the Freesound API"
        return FreesoundCheck(api_url=where, key_found=False, ok=False, problem=str(exc))
    budget = RateBudget.for_key(key)
    client = FreesoundClient(key, base_url=api_url, budget=budget, retries=1)
    try:
        client.search("", page_size=1, fields="id")
    except KeyRefusedError as exc:
        where = f"the key in {key_file}" if key_file else f"${ENV_API_KEY}"
        return FreesoundCheck(api_url=client.base_url, key_found=True, ok=False,
                              problem=f"{exc}; check {where}")
    except EasyOwwError as exc:
        return FreesoundCheck(api_url=client.base_url, key_found=True, ok=False,
                              problem=str(exc))
    return FreesoundCheck(api_url=client.base_url, key_found=True, ok=True, problem=None,
                          budget_left=budget.status()["budget_left"])
