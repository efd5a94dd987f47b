"""The Parquet route of a dataset's fallback: shards whose rows hold encoded audio (AudioSet
on the Hub since its conversion: ``video_id``, ``audio`` {``bytes``, ``path``}) become
``<name>.wav`` files, 16-bit mono at the fallback's rate, in the folder the primary route
fills.

Rows are converted in parallel (libsndfile and libsoxr release the GIL) and each WAV takes
its name in one rename, so a run stopped half-way keeps every WAV it finished; the next run
hashes those instead of converting them again. pyarrow is an optional extra
(``easy-oww[parquet]``), imported only here and only when this route runs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from easy_oww.atomic import atomic_writer
from easy_oww.datasets.catalog import Fallback
from easy_oww.errors import IntegrityError, MissingExtraError
from easy_oww.hashes import HashingWriter, file_hash

EXTRA = "parquet"
_BATCH_ROWS = 64  # rows read at a time: a row is one clip, about 1 MB of FLAC at 48 kHz


class BadRowError(IntegrityError):
    """A shard's row has no usable name or no audio bytes."""


@dataclass(frozen=True)
class ConvertedRow:
    path: Path
    size: int
    sha256: str


def require_pyarrow() -> None:
    """MissingExtraError, naming the extra and the route, when pyarrow cannot be imported;
    checked before any shard is downloaded (the engine puts the dataset's key before it)."""
    try:
        import pyarrow.parquet  # noqa: F401 - an optional extra: loaded only on this route
    except ImportError:
        raise MissingExtraError(
            "the Parquet route needs pyarrow, which is not installed; run "
            f"pip install 'easy-oww[{EXTRA}]' and download again") from None


def wav_name(name: Any, shard: str) -> str:
    """`<name>.wav`, refusing a name that would leave the flat folder or hide a file."""
    text = str(name).strip() if name is not None else ""
    if not text or "/" in text or "\\" in text or text.startswith(".") or "\0" in text:
        raise BadRowError(f"{shard}: a row is named {name!r}, which cannot be a file name")
    return f"{text}.wav"


def convert_shard(shard: Path, into: Path, fallback: Fallback, *, jobs: int | None = None,
                  on_row: Callable[[ConvertedRow], None] | None = None) -> list[ConvertedRow]:
    """Every row of `shard` as a WAV in `into`; a WAV already there (a run stopped half-way)
    is hashed, not converted again."""
    # Imported here: numpy and libsoxr load only when there is audio to convert.
    from easy_oww.audio import AudioConverter

    converter = AudioConverter(fallback.sample_rate)
    into.mkdir(parents=True, exist_ok=True)
    workers = max(1, jobs or os.cpu_count() or 1)

    def one(name: str, data: bytes) -> ConvertedRow:
        final = into / name
        if final.is_file():  # finished by an earlier run: its rename was its last step
            return ConvertedRow(final, final.stat().st_size, file_hash(final).split(":")[1])
        with atomic_writer(final) as handle:
            writer = HashingWriter(handle)
            converter.convert_bytes(data, writer, f"{shard.name}: {name}")
        return ConvertedRow(final, writer.size, writer.hexdigest())

    out: list[ConvertedRow] = []
    with ThreadPoolExecutor(workers, thread_name_prefix="parquet") as pool:
        pending: list[Future[ConvertedRow]] = []
        try:
            for name, data in _rows(shard, fallback):
                pending.append(pool.submit(one, name, data))
                if len(pending) >= 2 * workers:  # bounded: a shard is gigabytes of FLAC
                    out.append(_done(pending.pop(0), on_row))
            while pending:
                out.append(_done(pending.pop(0), on_row))
        except BaseException:
            for future in pending:  # what has not started is not worth waiting for
                future.cancel()
            raise
    return out


def _done(future: Future[ConvertedRow], on_row: Callable[[ConvertedRow], None] | None
          ) -> ConvertedRow:
    row = future.result()
    if on_row is not None:
        on_row(row)
    return row


def _rows(shard: Path, fallback: Fallback) -> Iterator[tuple[str, bytes]]:
    """(WAV name, encoded audio) of each row, read a batch at a time."""
    import pyarrow.parquet as pq  # an optional extra: loaded only on this route

    label = shard.name
    try:
        handle = pq.ParquetFile(shard)
    except Exception as exc:  # noqa: BLE001 - pyarrow's errors have no common base of its own
        raise IntegrityError(f"{label}: not a readable Parquet file ({exc})") from None
    columns = set(handle.schema_arrow.names)
    for column in (fallback.name_column, fallback.audio_column):
        if column not in columns:
            raise IntegrityError(f"{label}: no column {column!r} (it has "
                                 f"{', '.join(sorted(columns))}); correct the fallback's "
                                 "name_column / audio_column")
    for batch in handle.iter_batches(batch_size=_BATCH_ROWS,
                                     columns=[fallback.name_column, fallback.audio_column]):
        names = batch.column(0).to_pylist()
        audio = batch.column(1).to_pylist()
        for name, cell in zip(names, audio, strict=True):
            data = cell.get("bytes") if isinstance(cell, dict) else cell
            if not isinstance(data, bytes) or not data:
                raise BadRowError(f"{label}: row {name!r} has no audio bytes in "
                                  f"{fallback.audio_column!r}")
            yield wav_name(name, label), data


def shards_of(paths: list[str], fallback: Fallback) -> list[str]:
    """The listing's Parquet files the fallback takes (the first `max_files`, by name)."""
    shards = sorted(p for p in paths if PurePosixPath(p).suffix == f".{fallback.format}")
    return shards if fallback.max_files is None else shards[:fallback.max_files]
