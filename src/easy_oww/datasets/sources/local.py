"""A dataset made here (``made_by``), not downloaded: its files come from a command of
easy-oww's own, which records each one in the manifest as it makes it.

There is nothing to fetch, so it resolves to no downloads; `download` names the command
instead, and `status`, `verify`, `paths` and `iter_clips` read what the manifest recorded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from easy_oww.datasets.sources.base import (
    FileEntry,
    ListingSlot,
    ResolvedFile,
    Source,
    SourceEntryError,
)


@dataclass(frozen=True)
class MadeHere(Source):
    kind: ClassVar[str] = "made"
    naming_key: ClassVar[str] = "made_by"
    keys: ClassVar[Mapping[str, type]] = {"made_by": str}
    hint: ClassVar[str] = "made_by (an easy-oww command)"
    lands_in_folder: ClassVar[bool] = True

    made_by: str  # the command that makes the files, as a user types it

    @classmethod
    def from_table(cls, table: Mapping[str, Any]) -> MadeHere:
        command = table.get("made_by")
        if not command or not str(command).startswith("easy-oww "):
            raise SourceEntryError("made_by", "must be the easy-oww command that makes the "
                                   "files, e.g. \"easy-oww freesound background\"")
        return cls(command)

    def resolve(self, entry: FileEntry, dataset: str, listing: ListingSlot, *, online: bool
                ) -> list[ResolvedFile]:
        return []  # nothing to download: the manifest lists what the command made
