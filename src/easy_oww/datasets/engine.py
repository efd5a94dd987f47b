"""`DatasetEngine`: status, download, verify — everything the CLI does, from Python.

`DatasetManager` (manager.py) is this plus the seed's per-dataset faces; the faces build an
engine of their own when given none, so they sit between the two and no import goes round."""

from __future__ import annotations

import os
import queue
import threading
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

from rich.console import Console
from rich.table import Table

from easy_oww import validate
from easy_oww.datasets.cache import CacheManager
from easy_oww.datasets.catalog import Catalog, Dataset
from easy_oww.datasets.mirror import Mirror, MirrorRoutes
from easy_oww.datasets.sources import MadeHere, ResolvedFile, SourceResolver
from easy_oww.datasets.sources.huggingface import is_commit
from easy_oww.datasets.unpacking import (
    UnpackOptions,
    conversion_rate,
    members_intact,
    unpack_dataset,
)
from easy_oww.errors import (
    EasyOwwError,
    FileSystemLimitError,
    IntegrityError,
    NotEnoughSpaceError,
    NotFoundError,
)
from easy_oww.hashes import file_hash
from easy_oww.progress import NullProgress, human_bytes
from easy_oww.transfer.fetch import (
    Cancelled,
    Fetcher,
    FetchOptions,
    FetchRequest,
    FetchResult,
    FormatCheckError,
    RangeSet,
)
from easy_oww.transfer.resume import Sidecar
from easy_oww.transfer.retry import RetryableError
from easy_oww.workers import WorkerPool
from easy_oww.workspace import Workspace, drive_info

STATUSES = ("cached", "partial", "missing", "corrupt", "stale")
GB = 1e9


@dataclass
class DatasetStatus:
    key: str
    name: str
    priority: str
    size_bytes: int | None
    status: str
    path: str
    done_bytes: int
    description: str = ""
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("description")
        return data


@dataclass
class FileOutcome:
    dataset: str
    path: str
    ok: bool
    skipped: bool = False
    transferred: int = 0
    error: str | None = None
    exit_code: int = 0
    not_found: bool = False  # the source answered that the file is not there (404, 410)
    status: int | None = None  # the HTTP status that refused it, when one did


@dataclass
class DownloadReport:
    outcomes: list[FileOutcome] = field(default_factory=list)
    dataset_errors: dict[str, str] = field(default_factory=dict)
    # Datasets made here (a `made_by` source) that are not made yet: key -> the one line
    # naming the command that makes them. Not a failure: there was nothing to download.
    made_here: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.dataset_errors and all(o.ok for o in self.outcomes)

    @property
    def errors(self) -> list[str]:
        return list(self.dataset_errors.values()) + [
            o.error for o in self.outcomes if o.error and o.dataset not in self.dataset_errors]

    @property
    def exit_code(self) -> int:
        codes = [o.exit_code for o in self.outcomes if not o.ok]
        return 0 if self.ok else (75 if codes and all(c == 75 for c in codes) else 1)


def made_by(dataset: Dataset) -> str | None:
    """The command that makes `dataset` when it is made here, not downloaded (every file entry
    a `made_by` source); None for a dataset that is downloaded."""
    made = [entry.source for entry in dataset.files if isinstance(entry.source, MadeHere)]
    return made[0].made_by if made and len(made) == len(dataset.files) else None


class DatasetEngine:
    """Central orchestrator for the datasets (the seed's ``DatasetManager`` without its
    per-dataset faces).

    The workspace is the parent of `datasets_dir`; without arguments the workspace is
    resolved as the CLI does (``EASY_OWW_WORKSPACE``, the folder remembered by ``init``,
    ``~/.easy-oww``). Quiet unless a `progress` display is passed.
    """

    def __init__(self, datasets_dir: str | Path | None = None, cache_dir: str | Path | None = None,
                 *, workspace: str | Path | Workspace | None = None,
                 catalog: Catalog | None = None, catalog_file: str | Path | None = None,
                 connections: int = 4, jobs: int = 3, options: FetchOptions | None = None,
                 progress: NullProgress | None = None) -> None:
        if isinstance(workspace, Workspace):
            self.workspace = workspace
        elif workspace is not None:
            self.workspace = Workspace(Path(workspace).expanduser().absolute())
        elif datasets_dir is not None:
            self.workspace = Workspace(Path(datasets_dir).expanduser().absolute().parent)
        else:
            self.workspace = Workspace.resolve()
        self.datasets_dir = (Path(datasets_dir).expanduser().absolute() if datasets_dir
                             else self.workspace.datasets_dir)
        self.cache_dir = (Path(cache_dir).expanduser().absolute() if cache_dir
                          else self.workspace.cache_dir)
        user_catalog = self.workspace.user_catalog
        self.catalog = catalog or Catalog.load(
            user_catalog if user_catalog.exists() else None, catalog_file)
        self.cache = CacheManager(self.cache_dir, self.datasets_dir)
        self.options = options or FetchOptions(connections=connections)
        self.jobs = max(1, jobs)
        self.progress = progress or NullProgress()
        self.resolver = SourceResolver(self.cache_dir / "listings")
        self.unpack_options = UnpackOptions()
        # Tried in order before the origin, for files with a known hash (datasets/mirror.py).
        self.mirrors: list[Mirror] = []
        self._mirror_routes: MirrorRoutes | None = None
        self._fetcher: Fetcher | None = None
        self._fetcher_lock = threading.Lock()

    @property
    def fetcher(self) -> Fetcher:
        with self._fetcher_lock:
            if self._fetcher is None:
                self._fetcher = Fetcher(self.options, progress=self.progress,
                                        lock_dir=self.cache_dir / "locks")
            return self._fetcher

    def cancel(self) -> None:
        """Stop downloads in flight (Ctrl-C): parts and sidecars stay for the next run."""
        self.fetcher.cancel.set()

    def path_of(self, key: str) -> Path:
        return self.datasets_dir / self.catalog.get(key).location

    # -- status ---------------------------------------------------------------------------------
    def files_of(self, dataset: Dataset, *, online: bool = False, split: str | None = None
                 ) -> list[ResolvedFile] | None:
        """The concrete files of `dataset` (only those one split needs, when given)."""
        files = self.resolver.resolve(dataset, online=online)
        if files is not None and dataset.on_fallback and dataset.fallback is not None:
            # Imported here: the Parquet route's module is needed only on that route.
            from easy_oww.datasets.parquet import shards_of

            taken = set(shards_of([f.path for f in files], dataset.fallback))
            files = [f for f in files if f.path in taken]
        if files is None or split is None:
            return files
        wanted = dataset.paths_for(split)
        catalog_paths = {f.path for f in dataset.files}
        return [f for f in files if f.path in wanted or f.path not in catalog_paths]

    def status(self, keys: list[str] | None = None) -> list[DatasetStatus]:
        manifest = self.cache.load()
        datasets = self.catalog.select(keys=keys) if keys else self.catalog.ordered()
        return [self._status_of(d, manifest) for d in datasets]

    def routed(self, dataset: Dataset, entry: dict[str, Any] | None) -> Dataset:
        """`dataset` as the route its download took: its fallback once the manifest says the
        fallback fetched it (its files are the fallback's, not the pinned ones)."""
        route = ((entry or {}).get("metadata") or {}).get("route")
        if dataset.fallback is not None and not dataset.on_fallback and \
                route == dataset.fallback.format:
            return dataset.via_fallback()
        return dataset

    def _status_of(self, dataset: Dataset, manifest: dict[str, Any]) -> DatasetStatus:
        entry = self.cache.entry(dataset.key, manifest) or {}
        dataset = self.routed(dataset, entry)
        recorded = entry.get("files", {})
        # Judge a dataset by the split it was completed with (FSD50K "dev" alone is cached).
        split = (entry.get("metadata") or {}).get("split")
        files = self.files_of(dataset, split=split if split in dataset.splits else None)
        size = None if files is None or any(f.size is None for f in files) else sum(
            f.size or 0 for f in files)
        made_here = made_by(dataset) is not None
        if made_here:  # its files are what its command recorded; the total is known once done
            made = sum(record.get("size", 0) for record in recorded.values())
            size = made if entry.get("complete") else None
        problems: list[str] = [f"{rel}: {f.get('reason')}" for rel, f in
                               entry.get("failed", {}).items()]
        # Every recorded file (downloaded or unpacked) must still be there at its size;
        # archives removed after a verified extraction are the exception.
        for rel, record in recorded.items():
            if record.get("removed"):
                continue
            try:
                actual = self.cache.absolute(rel).stat().st_size
            except OSError:
                problems.append(f"{rel}: missing")
                continue
            if actual != record.get("size"):
                problems.append(f"{rel}: {actual:,} bytes, recorded {record.get('size'):,}")
        stale = False
        byte_done = made if made_here else 0
        for item in files or []:
            record = recorded.get(item.path)
            if record is None:
                byte_done += _part_done(self.datasets_dir / item.path)
                continue
            byte_done += record.get("size", 0)
            if item.catalog_hash and record.get("catalog_hash") not in (None, item.catalog_hash):
                stale = True
        complete = bool(entry.get("complete")) and files is not None and all(
            f.path in recorded for f in files)
        if problems:
            state = "corrupt"
        elif stale:
            state = "stale"
        elif complete:
            state = "cached"
        elif byte_done > 0 or recorded:
            state = "partial"
        else:
            state = "missing"
        if state == "cached" and size is not None:
            byte_done = size
        return DatasetStatus(dataset.key, dataset.name, dataset.priority, size, state,
                             str(self.datasets_dir / dataset.location), min(byte_done, size)
                             if size is not None else byte_done, dataset.description, problems)

    def show_status(self, console: Console | None = None, keys: list[str] | None = None, *,
                    rows: list[DatasetStatus] | None = None) -> None:
        """Draw the status table of `keys` (default: every dataset), or of `rows` already
        computed by `status()`."""
        console = console or Console()
        table = Table(title=f"Datasets in {self.datasets_dir}")
        for column in ("Dataset", "Size", "Priority", "Status"):
            table.add_column(column, no_wrap=True)
        table.add_column("Path", overflow="fold")
        colours = {"cached": "[green]✓ ", "corrupt": "[red]✗ ", "stale": "[yellow]",
                   "partial": "[yellow]"}
        for row in self.status(keys) if rows is None else rows:
            cells = self.status_cells(row)
            cells[3] = colours.get(row.status, "") + cells[3]
            table.add_row(*cells)
        console.print(table)

    def status_cells(self, row: DatasetStatus, *, relative: bool = True) -> list[str]:
        """A status row as text: name, size, priority, status, path (relative to the
        datasets folder when `relative` and inside it)."""
        status = row.status
        if status == "partial" and row.size_bytes:
            status += f" {100 * row.done_bytes / row.size_bytes:.0f}%"
        size = human_bytes(row.size_bytes)
        approx = self.catalog.get(row.key).approx_size
        if row.size_bytes is None and approx:
            size = f"~{human_bytes(approx)}"  # exact once the Hub/Zenodo listing is fetched
        # Relative to the folder in the table's title: full paths wrapped over three lines.
        where = Path(row.path)
        if relative and where.is_relative_to(self.datasets_dir):
            where = where.relative_to(self.datasets_dir)
        return [row.name, size, row.priority.capitalize(), status, str(where)]

    def get_dataset_info(self) -> list[dict[str, Any]]:
        out = []
        for row in self.status():
            out.append({
                "key": row.key, "name": row.name, "description": row.description,
                "priority": row.priority, "size_bytes": row.size_bytes,
                # The exact size once known, else the catalog's estimate (MIT RIR, FSD50K).
                "size_gb": round((row.size_bytes or self.catalog.get(row.key).approx_size or 0)
                                 / GB, 2),
                "cached": row.status == "cached", "status": row.status, "path": row.path,
            })
        return out

    def is_cached(self, key: str) -> bool:
        return self.status([key])[0].status == "cached"

    # -- download -------------------------------------------------------------------------------
    def download_required(self, force: bool = False) -> DownloadReport:
        return self.download(self.catalog.select(), force=force)

    def download_all(self, force: bool = False) -> DownloadReport:
        return self.download(self.catalog.select(all_=True), force=force)

    def download(self, datasets: list[Dataset | str], *, force: bool = False) -> DownloadReport:
        """Fetch every file of `datasets` that is not cached yet; failures of one file do
        not stop the others. `force` skips the free-space check (never the FAT32 one)."""
        chosen = [d if isinstance(d, Dataset) else self.catalog.get(d) for d in datasets]
        report = DownloadReport()
        manifest = self.cache.load()
        planned: list[Dataset] = []
        todo: list[tuple[Dataset, ResolvedFile]] = []
        gone: dict[str, tuple[Dataset, NotFoundError]] = {}  # datasets whose fallback is due
        for dataset in chosen:
            dataset = self.routed(dataset, self.cache.entry(dataset.key, manifest))
            command = made_by(dataset)
            if command is not None:  # nothing to fetch: say what makes it, unless it is made
                if self._status_of(dataset, manifest).status != "cached":
                    report.made_here[dataset.key] = (
                        f"{dataset.key} is made here, not downloaded: run `{command}`")
                continue
            try:
                if dataset.on_fallback:
                    self._check_fallback_needs()  # before a shard is fetched
                files = self.files_of(dataset, online=True,
                                      split=self.unpack_options.split_of(dataset))
            except NotFoundError as exc:
                if dataset.fallback is not None and not dataset.on_fallback:
                    gone[dataset.key] = (dataset, exc)  # its listing lacks the pinned files
                else:
                    report.dataset_errors[dataset.key] = f"{dataset.key}: {exc}"
                continue
            except EasyOwwError as exc:  # a listing failed: the other datasets go on
                report.dataset_errors[dataset.key] = f"{dataset.key}: {exc}"
                continue
            planned.append(dataset)
            todo += [(dataset, f) for f in files or [] if not self._already_done(f, manifest)]
        self._preflight(todo, force)
        sizes = [(f.size, _part_done(self.datasets_dir / f.path)) for _, f in todo]
        if todo and all(size is not None for size, _ in sizes):
            self.progress.set_total(sum(size or 0 for size, _ in sizes),
                                    sum(done for _, done in sizes))

        work: queue.Queue[tuple[Dataset, ResolvedFile]] = queue.Queue()
        for item in todo:
            work.put(item)
        results: list[FileOutcome] = []
        lock = threading.Lock()

        def worker() -> None:
            while True:
                try:
                    dataset, item = work.get_nowait()
                except queue.Empty:
                    return
                try:
                    outcome = self._download_one(dataset, item)
                except Exception as exc:  # noqa: BLE001 - one file's failure is reported, not fatal
                    outcome = FileOutcome(dataset.key, item.path, False,
                                          error=f"{item.path}: {exc}", exit_code=1)
                with lock:
                    results.append(outcome)

        pool = WorkerPool(worker, min(self.jobs, max(1, len(todo))), "job").start()
        try:
            pool.wait()
        except BaseException:
            self.cancel()  # Ctrl-C / SIGTERM: let the threads save their sidecars
            pool.wait(5)  # a stalled connection notices only when its read times out
            raise
        for dataset in planned:
            if dataset.fallback is not None and not dataset.on_fallback:
                missing = next((o for o in results if o.dataset == dataset.key and o.not_found),
                               None)
                if missing is not None:
                    gone[dataset.key] = (dataset, NotFoundError(missing.error or missing.path,
                                                                status=missing.status))
        # A dataset taking its fallback: the pinned files' 404s are replaced by that route.
        results = [o for o in results if o.dataset not in gone]
        report.outcomes = results
        succeeded = {(o.dataset, o.path) for o in results if o.ok}
        pending = {(d.key, f.path) for d, f in todo} - succeeded
        for dataset in planned:
            if dataset.key in gone:
                continue
            if any(key == dataset.key for key, _ in pending):
                continue  # a file is missing: the dataset must not be marked complete
            try:
                self._finalize(dataset)
            except EasyOwwError as exc:
                report.dataset_errors[dataset.key] = f"{dataset.key}: {exc}"
            except OSError as exc:  # disk full while unpacking, drive gone
                report.dataset_errors[dataset.key] = (
                    f"{dataset.key}: {exc.strerror or exc} ({exc.filename or 'unpacking'}); "
                    "what is done is kept, run again to finish")
        if gone:
            for dataset, exc in gone.values():
                self.progress.log(_fallback_line(dataset, exc))
            routed = self.download([d.via_fallback() for d, _ in gone.values()], force=force)
            report.outcomes += routed.outcomes
            report.dataset_errors.update(routed.dataset_errors)
            for dataset, _ in gone.values():
                if (self.cache.entry(dataset.key) or {}).get("complete"):
                    self._drop_turned_aside(dataset)
        return report

    def _drop_turned_aside(self, dataset: Dataset) -> None:
        """Once its fallback has fetched `dataset`, the files of the route a 404 turned aside
        (AudioSet's tars fetched before it, in this run or an earlier one: up to 2.8 GB each)
        are of no use: deleted with their resume records, forgotten, and said in one line."""
        if self.unpack_options.keep_archives:
            return
        whole, partial, freed = 0, 0, 0
        for item in dataset.files:
            dest = self.datasets_dir / item.path
            for path in (dest, Path(f"{dest}.part"), Path(f"{dest}.part.json")):
                if path.is_file() and not path.is_symlink():
                    stat = path.stat()  # a part is sparse: its blocks are what comes back
                    freed += min(stat.st_size, getattr(stat, "st_blocks", 1 << 62) * 512)
                    path.unlink()
                    whole += path == dest
                    partial += path.suffix == ".part"
        self.cache.forget_files(dataset.key, [item.path for item in dataset.files])
        if freed:
            assert dataset.fallback is not None  # only a dataset with a fallback turns aside
            self.progress.log(
                f"{dataset.key}: removed what the pinned route fetched before the "
                f"{dataset.fallback.format.capitalize()} "
                f"route took over ({whole} file(s), {partial} partial; {human_bytes(freed)} "
                "freed)")

    def _check_fallback_needs(self) -> None:
        """MissingExtraError when the fallback's format needs an extra not installed."""
        # Imported here: the Parquet route's module is needed only on that route.
        from easy_oww.datasets.parquet import require_pyarrow

        require_pyarrow()

    def is_recorded(self, item: ResolvedFile, manifest: dict[str, Any] | None = None) -> bool:
        """Whether `item` is downloaded and recorded, still at its recorded size."""
        return self._already_done(item, manifest if manifest is not None else self.cache.load())

    def bytes_on_disk(self, item: ResolvedFile, manifest: dict[str, Any] | None = None) -> int:
        """What a download of `item` already has: all of it once recorded, else what its
        partial download's resume record vouches for."""
        manifest = manifest if manifest is not None else self.cache.load()
        if item.size is not None and self._already_done(item, manifest):
            return item.size
        return _part_done(self.datasets_dir / item.path)

    def _already_done(self, item: ResolvedFile, manifest: dict[str, Any]) -> bool:
        entry = self.cache.entry(item.dataset, manifest) or {}
        record = entry.get("files", {}).get(item.path)
        if record is None:
            return False
        if item.catalog_hash and record.get("catalog_hash") not in (None, item.catalog_hash):
            return False  # stale: the catalog's hash changed since it was downloaded
        if record.get("removed"):
            # An archive deleted after extraction is done while its members are intact;
            # a member lost or failed since means fetching the archive again.
            dataset = self.routed(self.catalog.get(item.dataset), entry)
            return members_intact(self.cache, dataset, entry, item.path)
        try:
            return (self.datasets_dir / item.path).stat().st_size == record.get("size")
        except OSError:
            return False

    def _preflight(self, todo: list[tuple[Dataset, ResolvedFile]], force: bool) -> None:
        if not todo:
            return
        drive = drive_info(self.datasets_dir)
        limit = drive.max_file_bytes
        for dataset, item in todo:
            if limit is not None and item.size is not None and item.size > limit:
                raise FileSystemLimitError(
                    f"{dataset.key}: {item.path} is {human_bytes(item.size)} but "
                    f"{drive.mountpoint} "
                    f"is {drive.fstype}, which holds files up to 4 GiB; reformat the drive as "
                    "exFAT, NTFS, APFS or ext4, or choose another --workspace")
        need = 0
        for _dataset, item in todo:
            if item.size is not None:
                need += item.size - _part_done(self.datasets_dir / item.path)
        unpacking = {d.key: d for d, _ in todo if d.unpack}
        for dataset in unpacking.values():
            archives = {p for u in dataset.unpack for p in u.files}
            need += sum(i.size or 0 for d, i in todo if d.key == dataset.key and i.path in archives)
        if need > drive.free_bytes and not force:
            raise NotEnoughSpaceError(
                f"need {human_bytes(need)} on {drive.mountpoint} for {self.datasets_dir}, have "
                f"{human_bytes(drive.free_bytes)} free; free some space, choose another drive "
                "with --workspace, or pass --force to try anyway")

    def _download_one(self, dataset: Dataset, item: ResolvedFile) -> FileOutcome:
        dest = self.datasets_dir / item.path
        try:
            request = FetchRequest(item.url, dest, item.size, item.hash,
                                   label=f"{dataset.key}: {Path(item.path).name}",
                                   auth_headers=item.auth_headers(), auth_host=item.auth_host,
                                   host_connections=item.host_connections,
                                   fallback_urls=item.fallback_urls,
                                   done_by_other=lambda: self._already_done(item,
                                                                            self.cache.load()),
                                   check=lambda part: self._check_format(item, part),
                                   on_complete=lambda result: self._record(dataset, item, result))
            if self._adopt(dataset, item, dest, request):
                return FileOutcome(dataset.key, item.path, True, skipped=True)
            result = None
            if self.mirrors:  # tried first; None when none served good bytes
                result = self._routes().fetch(request, item.path, lambda done, mirror: (
                    self._record(dataset, item, done, served_from=mirror.label)))
            if result is None:
                result = self.fetcher.fetch(request)
            return FileOutcome(dataset.key, item.path, True, skipped=result.skipped,
                               transferred=result.transferred)
        except Cancelled:
            return FileOutcome(dataset.key, item.path, False, error="cancelled", exit_code=130)
        except EasyOwwError as exc:
            if isinstance(exc, IntegrityError):  # a check failed: the dataset is corrupt
                self.cache.record_failure(dataset.key, dest, str(exc))
            # A download that failed its format check still cost its bytes: count them.
            spent = exc.transferred if isinstance(exc, FormatCheckError) else 0
            return FileOutcome(dataset.key, item.path, False, error=str(exc),
                               exit_code=exc.exit_code, transferred=spent,
                               not_found=isinstance(exc, NotFoundError),
                               status=getattr(exc, "status", None))

    def _routes(self) -> MirrorRoutes:
        cancel = self.fetcher.cancel  # (before the lock: `fetcher` takes it too)
        with self._fetcher_lock:
            routes = self._mirror_routes
            if routes is None or routes.mirrors != self.mirrors or \
                    routes.progress is not self.progress:
                routes = self._mirror_routes = MirrorRoutes(
                    self.mirrors, self.options, progress=self.progress,
                    lock_dir=self.cache_dir / "locks", cancel=cancel)
            return routes

    def _record(self, dataset: Dataset, item: ResolvedFile, result: FetchResult, *,
                served_from: str | None = None) -> None:
        """Record a fresh download, its format already checked before it took its name
        (still under the file's lock, so a process waiting for that lock finds it recorded);
        `served_from`: the mirror it came from (the manifest's "from")."""
        extra: dict[str, Any] = {"archive": True} if _is_archive(dataset, item) else {}
        if served_from is not None:
            extra["from"] = served_from
        self.cache.record_file(dataset.key, result.path, size=result.size, hash=result.hash,
                               source=item.url, validator=result.validator,
                               catalog_hash=item.catalog_hash, extra=extra or None)

    def _adopt(self, dataset: Dataset, item: ResolvedFile, dest: Path,
               request: FetchRequest) -> bool:
        """A final file with no manifest record (manifest lost or rebuilt, or put there by
        hand): keep it instead of downloading it again only when something confirms it: the
        catalog's hash, else the size the catalog or at least the server states. With no
        proof it is downloaded anew (and replaced only once the new copy checks out)."""
        if not dest.is_file():
            return False
        size = item.size
        if item.hash is None and size is None:
            try:  # one HEAD: cheaper than fetching a file that may be large
                size = self.fetcher.probe(request).size
            except (EasyOwwError, RetryableError):
                return False  # the download itself reports why the server is unreachable
        if size is None and item.hash is None or size is not None and dest.stat().st_size != size:
            return False
        algorithm = item.hash.algorithm if item.hash else "sha256"
        actual = file_hash(dest, algorithm)
        if item.hash and actual != str(item.hash):
            return False
        try:
            self._check_format(item, dest)
        except IntegrityError:
            return False  # not the file the catalog describes: fetch the real one
        self.cache.record_file(dataset.key, dest, size=dest.stat().st_size, hash=actual,
                               source=item.url,
                               catalog_hash=item.catalog_hash,
                               extra={"archive": True} if _is_archive(dataset, item) else None)
        return True

    def _check_format(self, item: ResolvedFile, path: Path) -> None:
        """Header checks the catalog asks for (npy shape/dtype, wav rate/channels)."""
        entry = item.entry
        if entry.format == "npy":
            pins: dict[str, Any] = {"shape": entry.shape, "dtype": entry.dtype}
        elif entry.format == "wav":
            pins = {"sample_rate": entry.sample_rate, "channels": entry.channels}
        else:
            return
        result = validate.check_file(path, entry.format, **pins)
        if not result.ok:
            raise validate.FormatError(path, result.problem,
                                       expected=result.expected, found=result.found)

    def _finalize(self, dataset: Dataset) -> None:
        """All files are in: unpack what the catalog says to, then mark the dataset done."""
        options = self.unpack_options
        if dataset.on_fallback:
            self._convert_fallback(dataset)
        elif dataset.unpack:
            unpack_dataset(dataset, options, self.cache, lock_dir=self.cache_dir / "locks",
                           lock_timeout=self.fetcher.options.lock_timeout,
                           log=self.fetcher.progress.log)
        metadata: dict[str, Any] = {"catalog": dataset.source}
        if dataset.splits:
            metadata["split"] = options.split_of(dataset) or "both"
        rate = conversion_rate(dataset, options)
        if dataset.on_fallback and dataset.fallback is not None:
            rate = options.sample_rate or dataset.fallback.sample_rate
        if rate:
            metadata["sample_rate"] = rate
        if dataset.route:
            metadata["route"] = dataset.route
        self.cache.mark_complete(dataset.key, True, metadata)

    def _convert_fallback(self, dataset: Dataset) -> None:
        """Each fallback shard's rows to WAVs in the fallback's folder, recorded shard by
        shard; the shards are removed once converted (kept with --keep-archives)."""
        # Imported here: the Parquet route (and pyarrow) is loaded only when it runs.
        from easy_oww.datasets.parquet import convert_shard

        assert dataset.fallback is not None
        # --sample-rate, when given, wins over the catalog's rate, as for an unpack.
        rate = self.unpack_options.sample_rate or dataset.fallback.sample_rate
        fallback = replace(dataset.fallback, sample_rate=rate)
        entry = self.cache.entry(dataset.key) or {}
        shards = [f.path for f in self.files_of(dataset) or []]
        into = self.datasets_dir / fallback.into
        settings = None
        for rel in shards:
            if entry.get("files", {}).get(rel, {}).get("removed") and members_intact(
                    self.cache, dataset, entry, rel):
                continue  # converted by an earlier run
            rows = convert_shard(self.datasets_dir / rel, into, fallback, jobs=self.jobs)
            if settings is None:
                # Imported here: numpy and libsoxr load only when there is audio.
                from easy_oww.audio import AudioConverter

                settings = AudioConverter(fallback.sample_rate).decoded_settings
            self.cache.record_files(dataset.key, [
                {"path": r.path, "size": r.size, "hash": f"sha256:{r.sha256}", "member": True,
                 "source": rel, "settings": settings} for r in rows])
            self.progress.log(f"{dataset.key}: {PurePosixPath(rel).name}: {len(rows)} clip(s) "
                              f"converted to {fallback.sample_rate} Hz WAV")
        if self.unpack_options.keep_archives:
            return
        for rel in shards:
            self.cache.mark_removed(dataset.key, rel)
            (self.datasets_dir / rel).unlink(missing_ok=True)

    # -- verify ---------------------------------------------------------------------------------
    def verify(self, keys: list[str] | None = None, deep: bool = False) -> list[dict[str, Any]]:
        """Re-hash every recorded file; rows with ok / problem. Missing datasets are rows too.
        Without `keys`, every dataset the manifest records is checked, also those no loaded
        catalog names (downloaded with another --catalog); each row says which catalog the
        dataset came from, where known. `deep` also checks every .npy header and decodes
        every WAV."""
        manifest = self.cache.load()
        if keys:
            chosen = [d.key for d in self.catalog.select(keys=keys)]
        else:
            chosen = [d.key for d in self.catalog.ordered() if self.cache.entry(d.key, manifest)]
            chosen += self.uncatalogued(manifest)
        rows: list[dict[str, Any]] = []
        for key in chosen:
            found = self.cache.verify_files(key)
            if not found and key in self.catalog.datasets:
                found = [{"dataset": key, "path": str(self.path_of(key)),
                          "ok": False, "problem": "not downloaded", "size": None,
                          "expected": None, "actual": None}]
            catalog = self.catalog_of(key, manifest)
            for row in found:
                row["catalog"] = catalog
                suffix = Path(row["path"]).suffix.lower()
                if deep and row["ok"] and suffix in (".wav", ".npy"):
                    result = validate.check_file(Path(row["path"]), suffix[1:], deep=True)
                    if not result.ok:
                        row["ok"], row["problem"] = False, result.message
                if not row["ok"] and row["problem"] != "not downloaded":
                    self.cache.record_failure(key, row["path"], row["problem"])
            rows.extend(found)
        return rows

    def uncatalogued(self, manifest: dict[str, Any] | None = None) -> list[str]:
        """Datasets the manifest records that no loaded catalog names (fetched with another
        --catalog): still someone's data, so verify, paths and clean keep them in view."""
        manifest = manifest if manifest is not None else self.cache.load()
        return sorted(k for k in manifest["datasets"] if k not in self.catalog.datasets)

    def catalog_of(self, key: str, manifest: dict[str, Any] | None = None) -> str | None:
        """The catalog a dataset came from: the loaded one's, else what its download recorded."""
        if key in self.catalog.datasets:
            return self.catalog.datasets[key].source
        entry = self.cache.entry(key, manifest) or {}
        return (entry.get("metadata") or {}).get("catalog")

    def recorded_paths(self) -> dict[str, Path]:
        """Where each dataset the manifest calls complete lives, catalogued or not: one file,
        or the folder holding all of its files."""
        manifest = self.cache.load()
        out: dict[str, Path] = {}
        for row in self.status():
            if row.status == "cached":
                out[row.key] = Path(row.path)
        for key in self.uncatalogued(manifest):
            if not self.cache.is_cached(key):
                continue
            files = [rel for rel, r in self.cache.entry(key, manifest)["files"].items()
                     if not r.get("removed")]
            if files:
                common = os.path.commonpath(files) if len(files) > 1 else files[0]
                out[key] = self.datasets_dir / common
        return out


def _part_done(dest: Path) -> int:
    """Bytes a resumable part file already holds, as its resume record vouches."""
    record = Sidecar(Path(str(dest) + ".part.json")).load()
    return RangeSet(record.written or record.done).total() if record else 0


def _is_archive(dataset: Dataset, item: ResolvedFile) -> bool:
    return dataset.on_fallback or any(item.path in u.files for u in dataset.unpack)


def _fallback_line(dataset: Dataset, exc: NotFoundError) -> str:
    """The one line saying a dataset's files are gone and which route replaces them."""
    fallback = dataset.fallback
    assert fallback is not None
    revisions = {getattr(f.source, "revision", None) for f in dataset.files} - {None}
    revision = str(revisions.pop()) if len(revisions) == 1 else ""
    pinned = is_commit(revision)
    answer = f"answer {exc.status}" if exc.status else "are not found"
    what = f"the pinned {dataset.route}" if pinned else f"its {dataset.route}"
    at = f" at {revision[:7]}" if revision else ""
    return (f"{dataset.key}: {what} {answer}{at}; using the {fallback.format.capitalize()} "
            f"route ({fallback.describe()})")
