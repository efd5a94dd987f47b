"""`easy-oww mirror push s3://bucket/prefix`: a workspace's verified datasets into a bucket,
in the layout every mirror has: ``prefix/datasets/<path>`` and ``prefix/index.json`` (the
index `mirror serve` serves).

Exactly the files `mirror serve` would serve (datasets/mirror.py's `verified_files`). Each is
hashed again before it leaves (a file that rotted since it was checked is not pushed: every
client would refuse it anyway) and uploaded with its hash in the object's metadata
(``x-amz-meta-easy-oww-hash``). An object already there with the same size and that hash is
skipped without reading the local file, so a push again uploads nothing. The metadata only
decides what to skip here: a client checks every byte against its own catalog's hash.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

from easy_oww.datasets.cache import CacheManager
from easy_oww.datasets.mirror import VerifiedFile, WorkspaceShelf
from easy_oww.hashes import KnownHash, file_hash
from easy_oww.progress import NullProgress, human_bytes
from easy_oww.transfer.s3 import S3Bucket, S3Location

INDEX_NAME = "index.json"


@dataclass
class PushReport:
    uploaded: list[VerifiedFile] = field(default_factory=list)
    already_there: list[VerifiedFile] = field(default_factory=list)
    refused: list[tuple[VerifiedFile, str]] = field(default_factory=list)  # failed their hash
    index_written: bool = False

    @property
    def uploaded_bytes(self) -> int:
        return sum(f.size for f in self.uploaded)


def push_to_bucket(cache: CacheManager, location: S3Location, *,
                   progress: NullProgress | None = None,
                   say: Callable[[str], None] = lambda line: None,
                   announce: Callable[[int, int], None] = lambda files, size: None
                   ) -> PushReport:
    """Upload what is missing or different; write the index last (it lists only what is
    there). Errors of the store (no credentials, no bucket, access denied) raise at once,
    before `announce` is told how many files (and bytes) there are to push."""
    progress = progress or NullProgress()
    bucket = S3Bucket(location)
    bucket.check_credentials()
    bucket.check_bucket()
    shelf = WorkspaceShelf(cache)
    files = shelf.files()
    announce(len(files), sum(f.size for f in files.values()))
    report = PushReport()
    for rel, item in sorted(files.items()):
        key = location.dataset_key(rel)
        there = bucket.head(key)
        if there is not None and there.size == item.size and there.hash == item.hash:
            report.already_there.append(item)
            say(f"{rel}: already there")
            continue
        known = KnownHash.parse(item.hash)
        path = cache.datasets_dir / rel
        if file_hash(path, known.algorithm) != str(known):
            why = "its bytes no longer match the hash recorded when it was checked"
            report.refused.append((item, why))
            say(f"{rel}: not pushed: {why}; run `easy-oww verify`")
            continue
        task = progress.task(rel, item.size, 0)
        ok = False
        try:
            bucket.upload(path, key, item.hash, task.advance)
            ok = True
        finally:
            task.finish(ok)
        report.uploaded.append(item)
        say(f"{rel}: uploaded, {human_bytes(item.size)}")
    refused = {item.path for item, _ in report.refused}
    index = shelf.index()
    for dataset in index["datasets"]:
        dataset["files"] = [f for f in dataset["files"] if f["path"] not in refused]
    index["datasets"] = [d for d in index["datasets"] if d["files"]]
    body = json.dumps(index).encode()
    index_key = location.key(INDEX_NAME)
    if bucket.get_bytes(index_key) != body:
        bucket.put_bytes(index_key, body, "application/json")
        report.index_written = True
    return report

