"""What the seed's per-dataset downloader classes share: a manager and one download call."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from easy_oww.datasets.engine import DatasetEngine
from easy_oww.errors import EasyOwwError


class DatasetFace:
    def __init__(self, datasets_dir: str | Path | None = None, *,
                 manager: DatasetEngine | None = None, **manager_options: Any) -> None:
        if manager is None:
            manager = DatasetEngine(datasets_dir=datasets_dir, **manager_options)
        self.manager = manager

    def _download(self, key: str) -> Path:
        """Download one dataset; raises the first error as a one-line named exception."""
        report = self.manager.download([key])
        if not report.ok:
            failed = [o for o in report.outcomes if not o.ok]
            code = failed[0].exit_code if failed else 1
            error = EasyOwwError(report.errors[0])
            error.exit_code = code
            raise error
        return self.manager.path_of(key)
