"""Watching the order of the calls that make a write survive a power cut.

A test cannot pull the power, so it checks the order that makes a write durable: the new
file's bytes fsynced (or fdatasynced) after its last write and before the rename that gives
it its name, and the folder fsynced after that rename (so the rename itself is on disk).

`SyncLog` wraps os.pwrite, os.write, os.fsync, os.fdatasync, os.replace and os.rename: each
call is logged with the path it touches, then the real function runs. This observes; the
real write, sync and rename still happen on the real filesystem. (strace would watch the
same from outside, but needs ptrace and a tool CI does not install; the engines run
in-process here, so wrapping the os functions sees every call they make.)
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class Call:
    op: str  # "write", "sync", "rename"
    path: str  # for a rename: the source
    target: str = ""  # for a rename: the destination
    span: tuple[int, int] | None = None  # for a pwrite: the bytes [start, end) written
    data: bytes | None = None  # for a rename kept by `keep`: the file's bytes


def _fd_path(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return f"<fd {fd}>"


class SyncLog:
    def __init__(self, monkeypatch: pytest.MonkeyPatch,
                 keep: Callable[[str], bool] = lambda target: False) -> None:
        """`keep(target)`: whether to keep the bytes of a file renamed to `target`."""
        self.calls: list[Call] = []
        self._lock = threading.Lock()
        real = {name: getattr(os, name) for name in
                ("pwrite", "write", "fsync", "fdatasync", "replace", "rename")}

        def log(call: Call) -> None:
            with self._lock:
                self.calls.append(call)

        def pwrite(fd: int, data: bytes, offset: int) -> int:
            log(Call("write", _fd_path(fd), span=(offset, offset + len(data))))
            return real["pwrite"](fd, data, offset)

        def write(fd: int, data: bytes) -> int:
            log(Call("write", _fd_path(fd)))
            return real["write"](fd, data)

        def sync(name: str):
            def synced(fd: int) -> None:
                log(Call("sync", _fd_path(fd)))
                real[name](fd)
            return synced

        def rename(name: str):
            def renamed(src, dst, *args, **kwargs) -> None:
                target = os.path.abspath(dst)
                data = Path(src).read_bytes() if keep(target) else None
                log(Call("rename", os.path.abspath(src), target, data=data))
                real[name](src, dst, *args, **kwargs)
            return renamed

        monkeypatch.setattr(os, "pwrite", pwrite)
        monkeypatch.setattr(os, "write", write)
        monkeypatch.setattr(os, "fsync", sync("fsync"))
        monkeypatch.setattr(os, "fdatasync", sync("fdatasync"))
        monkeypatch.setattr(os, "replace", rename("replace"))
        monkeypatch.setattr(os, "rename", rename("rename"))

    def renames_to(self, final: Path) -> list[int]:
        return [i for i, c in enumerate(self.calls)
                if c.op == "rename" and c.target == str(Path(final).absolute())]

    def assert_durable_rename(self, final: Path, *, writes_seen: bool = True) -> None:
        """`final` got its name by a rename of a file synced after its last write (when
        `writes_seen`: the file is written with os.write/os.pwrite; buffered Python writes
        end in os.write too, but only once flushed, which the sync itself requires), and its
        folder was synced after that rename."""
        final = Path(final).absolute()
        renames = self.renames_to(final)
        assert renames, f"{final.name} never got its name by a rename: written in place"
        at = renames[-1]
        source = self.calls[at].path
        before = self.calls[:at]
        # The file may have had other names on its way (a checked temp file, then a staged
        # one): its syncs under any of them count.
        names, name, upto = {source}, source, at
        while True:
            earlier = [i for i, c in enumerate(self.calls[:upto])
                       if c.op == "rename" and c.target == name]
            if not earlier:
                break
            upto = earlier[-1]
            name = self.calls[upto].path
            names.add(name)
        syncs = [i for i, c in enumerate(before) if c.op == "sync" and c.path in names]
        assert syncs, f"{Path(source).name} was renamed to {final.name} without an fsync"
        if writes_seen:
            writes = [i for i, c in enumerate(before) if c.op == "write" and c.path in names]
            assert writes, f"no write to {source} was seen"
            assert syncs[-1] > writes[-1], (
                f"{Path(source).name} was written after its last fsync, then renamed")
        after = self.calls[at + 1:]
        assert any(c.op == "sync" and c.path == str(final.parent) for c in after), (
            f"the folder {final.parent} was not fsynced after the rename to {final.name}")
