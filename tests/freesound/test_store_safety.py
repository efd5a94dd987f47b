"""What the library store must never get wrong: an interrupted transaction leaves nothing and
the library usable, and a backup or a restore is on disk before it takes its name."""

from __future__ import annotations

import sqlite3

import pytest

from easy_oww.freesound.backup import create_backup, restore_backup
from easy_oww.freesound.store import DB_NAME, FreesoundLibrary
from tests.durability import SyncLog
from tests.freesound.conftest import make_sound


def test_ctrl_c_inside_a_transaction_rolls_it_back_and_the_library_goes_on(library_dir):
    """KeyboardInterrupt is not an Exception: a rollback on Exception alone would leave the
    sample half-written in an open transaction, visible to this connection, and the next
    transaction would fail to begin."""
    with FreesoundLibrary(library_dir) as lib:
        lib.add_sample(make_sound(1))
        with pytest.raises(KeyboardInterrupt):
            with lib.transaction():
                lib.add_sample(make_sound(2))
                lib.add_edge(2, 1, "similar", 0.5, rank=1)
                raise KeyboardInterrupt
        assert not lib.has(2) and lib.edges_of(2) == []
        lib.add_sample(make_sound(3))  # a new transaction begins
        assert lib.stats().samples == 2
    with sqlite3.connect(library_dir / DB_NAME) as other:
        assert sorted(r[0] for r in other.execute("SELECT id FROM samples")) == [1, 3]


def test_a_backup_is_synced_before_it_takes_its_name(library_dir, monkeypatch):
    with FreesoundLibrary(library_dir) as lib:
        for i in range(1, 6):
            lib.add_sample(make_sound(i))
        log = SyncLog(monkeypatch)
        info = create_backup(lib)
    log.assert_durable_rename(info.path, writes_seen=False)


def test_a_restore_is_synced_before_it_takes_the_librarys_name(library_dir, monkeypatch):
    with FreesoundLibrary(library_dir) as lib:
        for i in range(1, 4):
            lib.add_sample(make_sound(i))
        info = create_backup(lib)
        lib.add_sample(make_sound(10))
    log = SyncLog(monkeypatch)
    restore_backup(library_dir, info.name)
    log.assert_durable_rename(library_dir / DB_NAME, writes_seen=False)
    with FreesoundLibrary(library_dir) as lib:
        assert lib.stats().samples == 3
