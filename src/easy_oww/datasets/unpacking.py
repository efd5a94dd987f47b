"""Unpack a downloaded dataset as its catalog says, record every output file, and remove
the archives once their members are out and checked (the manifest keeps their records,
marked removed, so a re-run does not fetch them again)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from easy_oww.datasets.catalog import DEFAULT_MAX_RATIO, Dataset
from easy_oww.datasets.sources import ResolvedFile
from easy_oww.datasets.unpack import extract

if TYPE_CHECKING:
    from easy_oww.datasets.manager import DatasetManager


def unpack_dataset(manager: DatasetManager, dataset: Dataset, files: list[ResolvedFile],
                   keep_archives: bool = False) -> None:
    entry = manager.cache.entry(dataset.key) or {}
    recorded = entry.get("files", {})
    archives: list[str] = []
    for spec in dataset.unpack:
        if all(recorded.get(p, {}).get("removed") for p in spec.files):
            continue  # extracted by an earlier run, archives already gone
        volumes = [manager.datasets_dir / p for p in spec.files]
        results = extract(volumes if len(volumes) > 1 else volumes[0],
                          manager.datasets_dir / spec.into, fmt=spec.format,  # type: ignore[arg-type]
                          strip_components=spec.strip_components,
                          max_ratio=spec.max_ratio or DEFAULT_MAX_RATIO)
        manager.cache.record_files(dataset.key, [
            {"path": r.path, "size": r.size, "hash": f"sha256:{r.sha256}", "member": True,
             "source": spec.files[-1], **({"settings": r.settings} if r.settings else {})}
            for r in results if r.kind == "file"])
        archives.extend(spec.files)
    if keep_archives:
        return
    for rel in dict.fromkeys(archives):
        manager.cache.mark_removed(dataset.key, rel)
        (manager.datasets_dir / rel).unlink(missing_ok=True)
