"""Mutation testing of the modules that guard the user's data, one module at a time.

    pip install -e ".[test,mutation]"
    python scripts/mutation.py                      # every module, each within its budget
    python scripts/mutation.py transfer/resume.py   # one module (a path under src/easy_oww)
    python scripts/mutation.py --list               # the modules, their tests and budgets

Too slow for every CI run (minutes per module on two cores): run it before resolving an issue
that touches one of these modules, and copy the table it prints into docs/mutation.md.

For each module, a scratch copy of the repository (src, tests, pyproject.toml) goes to
``--work``/<module>; its pyproject's [tool.mutmut] is narrowed to that module and its tests,
and ``mutmut run`` runs there under the module's time budget. mutmut 3 learns which tests
reach each function by running them once in-process; code reached only through a subprocess
(the CLI tests run ``python -m easy_oww``) shows as "no tests". Those mutants are then run
here against the module's subprocess test files (``MUTANT_UNDER_TEST`` is inherited by the
subprocess, whose PYTHONPATH points at the mutated copy), when ``--subprocess-budget`` allows.

The score is killed / (killed + survived + timeout + no tests - equivalent): a timeout counts
as a kill only if it is one (mutmut's "timeout" is a test that hung: a real difference, but
we count it apart), and an equivalent mutant (EQUIVALENT below: name and one-line reason) is
taken out of the denominator.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Module:
    path: str  # under src/easy_oww
    tests: tuple[str, ...]  # tests that exercise it in-process (mutmut maps them to functions)
    budget: int  # seconds for `mutmut run`
    subprocess_tests: tuple[str, ...] = ()  # tests that reach it only via `python -m easy_oww`
    timeout_constant: float = 10.0  # a mutant's time limit: 5 × (its tests' time + this)
    test_timeout: int | None = None  # pytest-timeout's limit per test in the scratch copy


def _deselect(*node_ids: str) -> tuple[str, ...]:
    """pytest arguments leaving these tests out of a module's test selection."""
    return tuple(arg for node_id in node_ids for arg in ("--deselect", node_id))


MODULES: dict[str, Module] = {m.path: m for m in [
    Module("transfer/resume.py", ("tests/transfer/test_resume.py", "tests/transfer/test_fetch.py",
                                  "tests/transfer/test_fetch_safety.py"), 900),
    Module("transfer/segments.py", ("tests/transfer/test_segments.py",
                                    "tests/transfer/test_fetch.py"), 600),
    Module("transfer/retry.py", ("tests/transfer/test_retry.py",
                                 "tests/transfer/test_fetch.py"), 900),
    # The files that reach fetch.py in-process (test_real_services.py: against the Zenodo and
    # Hub stand-ins; its three CLI tests are left out: the mutated copy in a subprocess without
    # MUTANT_UNDER_TEST fails them). The property test that cuts and faults a download 25
    # times (5 s alone) is left out too: each survivor paid for it (13 s a mutant, too slow for
    # 1467 of them). Leaving a test out can only lower the score, never raise it.
    Module("transfer/fetch.py", ("tests/transfer/test_fetch_mutants.py",
                                 "tests/transfer/test_fetch.py",
                                 "tests/transfer/test_fetch_safety.py",
                                 "tests/datasets/test_real_services.py",
                                 *_deselect("tests/transfer/test_fetch.py::test_any_cut_any_"
                                            "faults_ends_in_the_exact_bytes",
                                            "tests/datasets/test_real_services.py::test_a_file_"
                                            "failing_its_format_check_never_takes_the_final_name",
                                            "tests/datasets/test_real_services.py::test_a_restart"
                                            "_from_zero_is_said_with_its_cost",
                                            "tests/datasets/test_real_services.py::test_an_"
                                            "unreachable_hub_is_one_plain_line")), 3600,
           ("tests/datasets/test_download_cli.py",),
           # Many of its hasher's mutants hang (a thread waits for ever): 50 s of the default
           # limit's 5 × (tests' time + 10 s) went on each for nothing; 5 × (time + 2) still
           # leaves a run on a busy machine four times its time. And a test that hangs fails
           # after 10 s (each takes under 1 s): a hang is then a kill, seen at once.
           timeout_constant=2.0, test_timeout=10),
    Module("archives/splitzip.py", ("tests/archives/test_splitzip.py",
                                    "tests/archives/test_bzip2.py"), 900),
    # Its harvest's and throttle's mutants hang (a wait that never ends): each cost 5 × (the
    # tests' 45 s + 10 s); a test that hangs fails after 30 s instead (each takes under 4 s).
    Module("archives/extract.py", ("tests/archives", "tests/datasets/test_unpacking.py"), 1800,
           ("tests/datasets/test_unpack_download.py",), timeout_constant=2.0, test_timeout=30),
    Module("datasets/unpacking.py", ("tests/datasets/test_unpacking.py",), 900,
           ("tests/datasets/test_unpack_download.py", "tests/datasets/test_convert_unpack.py")),
    Module("datasets/cache.py", ("tests/datasets/test_cache.py", "tests/datasets/test_seed_api.py"),
           900, ("tests/datasets/test_download_cli.py",)),
    # The store is used by every freesound command: its three own test files reached 35 % of
    # it (2026-11-26: 670 mutants reached only through other files or subprocesses).
    Module("freesound/store.py", ("tests/freesound/test_store.py",
                                  "tests/freesound/test_store_properties.py",
                                  "tests/freesound/test_store_safety.py",
                                  "tests/freesound/test_store_mutants.py",
                                  "tests/freesound/test_backups.py",
                                  "tests/freesound/test_merge.py",
                                  "tests/freesound/test_crawl_safety.py",
                                  "tests/freesound/test_map.py",
                                  "tests/freesound/test_export_formats.py"), 3600,
           ("tests/freesound/test_grow.py", "tests/freesound/test_edges.py",
            "tests/freesound/test_missing_library.py")),
    # test_grow.py and test_edges.py grow libraries in subprocesses: 20-40 s a mutant, and
    # they reached less than test_crawl_units.py does in-process in 4 s (2026-11-26).
    Module("freesound/crawl.py", ("tests/freesound/test_crawl_units.py",
                                  "tests/freesound/test_crawl_safety.py"), 2400),
    Module("freesound/backup.py", ("tests/freesound/test_backups.py",
                                   "tests/freesound/test_store.py",
                                   "tests/freesound/test_store_safety.py"), 600,
           ("tests/freesound/test_grow.py",)),
    Module("freesound/backup_files.py", ("tests/freesound/test_backups.py",
                                         "tests/freesound/test_store.py",
                                         "tests/freesound/test_store_safety.py"), 600),
    Module("freesound/seed_pickle.py", ("tests/freesound/test_seed_pickle.py",), 900),
]}

# Mutants that cannot change behaviour, by mutmut's name, each with the reason. Names hold
# while the function's source does not change; a stale entry is reported, not counted.
EQUIVALENT: dict[str, str] = {
    "easy_oww.transfer.resume.xǁRangeSetǁmissing__mutmut_3":
        "s >= pos: the empty gap it lets through is dropped by the final filter",
    "easy_oww.transfer.resume.xǁRangeSetǁmissing__mutmut_14":
        "pos <= size: the empty gap it lets through is dropped by the final filter",
    "easy_oww.transfer.resume.xǁSidecarǁload__mutmut_3":
        "encoding=None: the sidecar is json.dumps output, ASCII, read alike by any locale",
    "easy_oww.transfer.resume.xǁSidecarǁload__mutmut_5": "'UTF-8' names the same codec",
    "easy_oww.transfer.resume.x_plan_resume__mutmut_24":
        "a weaker assert: `resumable` already established all three are not None",
    "easy_oww.transfer.resume.x_plan_resume__mutmut_25":
        "a weaker assert: `resumable` already established all three are not None",
    "easy_oww.archives.splitzip.xǁ_Volumesǁadvance__mutmut_5":
        "length < room: (disk, its size) and (disk + 1, 0) are the same place for every use",
    "easy_oww.archives.splitzip.xǁSplitZipReaderǁ_read_central_directory__mutmut_71":
        "'CP437' names the same codec",
    "easy_oww.archives.splitzip.xǁ_Volumesǁ_handle__mutmut_1":
        "a volume opened afresh for each read gives the same bytes (the dropped handle closes)",
    "easy_oww.archives.splitzip.xǁ_Volumesǁ_handle__mutmut_2":
        "a volume opened afresh for each read gives the same bytes (the dropped handle closes)",
    "easy_oww.archives.splitzip.xǁ_Volumesǁiter_range__mutmut_31":
        "read() stops at the volume's end without `room` too: the file holds no more bytes",
    "easy_oww.archives.splitzip.x__apply_zip64__mutmut_4":
        "a field of 4 bytes has an empty body: there is nothing to read in it either way",
    "easy_oww.archives.splitzip.x__apply_zip64__mutmut_5":
        "a field of 4 bytes has an empty body: there is nothing to read in it either way",
    "easy_oww.archives.splitzip.x__apply_zip64__mutmut_42":
        "the uncompressed size is read first, at i = 0: the default offset is 0",
    "easy_oww.archives.splitzip.x__apply_zip64__mutmut_46":
        "the uncompressed size is read first, at i = 0: i = 8 and i += 8 agree",
    "easy_oww.archives.splitzip.xǁSplitZipReaderǁ_read_central_directory__mutmut_41":
        "one byte more of extra: only a field claiming more than it holds reads it, wrong anyway",
    "easy_oww.archives.splitzip.xǁSplitZipReaderǁ_read_central_directory__mutmut_67":
        "'UTF-8' names the same codec",
    "easy_oww.archives.splitzip.xǁ_Decoderǁfor_member__mutmut_11":
        "a stored member's decoder passes bytes through and never reports: member unused",
    "easy_oww.archives.splitzip.xǁ_Decoderǁfor_member__mutmut_12":
        "a stored member's decoder passes bytes through and never reports: archive unused",
    "easy_oww.archives.splitzip.xǁ_Inflaterǁfinish__mutmut_2":
        "bytes after a whole stream go to unused_data; a cut stream is refused either way",
    "easy_oww.archives.splitzip.x__inflate__mutmut_12":
        "break or return: nothing follows the loop",
    "easy_oww.archives.splitzip.x__find_end_record__mutmut_19":
        "read(None) reads to the end of the file: the tail_len bytes left after the seek",
    "easy_oww.archives.splitzip.x__find_end_record__mutmut_39": "rfind's start None is 0",
    "easy_oww.archives.extract.xǁ_TarArchiveǁ__init____mutmut_12": "tarfile's default 'r' is 'r:*'",
    "easy_oww.archives.extract.xǁ_TarArchiveǁstream__mutmut_4":
        "only regular files are streamed, and extractfile gives their bytes: never None",
    "easy_oww.archives.extract.xǁ_TarArchiveǁentries__mutmut_18":
        "a file's or folder's link target is never read: only links use it",
    "easy_oww.archives.extract.xǁ_Extractionǁ_harvest__mutmut_6":
        "speed only: a full in-flight window waits for all of it, not the first; same results",
    "easy_oww.archives.extract.xǁ_Extractionǁ_harvest__mutmut_9":
        "speed only: the blocking harvests poll instead of blocking; same results",
    "easy_oww.archives.extract.xǁ_Extractionǁ_harvest__mutmut_11":
        "speed only: up to 1 s more after each member is handed over; same results",
    "easy_oww.archives.extract.x_extract__mutmut_41":
        "speed only: one worker thread instead of one per core; same results",
    "easy_oww.archives.extract.x_extract__mutmut_42":
        "speed only: one worker thread instead of one per core; same results",
    "easy_oww.archives.extract.x_extract__mutmut_43":
        "speed only: 2 workers when the core count is unknown; same results",
    "easy_oww.archives.extract.xǁ_Extractionǁgo__mutmut_137":
        "speed only: after a failure the harvest polls instead of blocking",
    "easy_oww.archives.extract.xǁ_Extractionǁgo__mutmut_139":
        "every future is harvested before the shutdown: nothing to wait for",
    "easy_oww.archives.extract.xǁ_Extractionǁgo__mutmut_140":
        "every future is harvested before the shutdown: nothing to wait for",
    "easy_oww.archives.extract.xǁ_Extractionǁgo__mutmut_144":
        "the temp folder is made just before the try: rmtree finds it",
    "easy_oww.archives.extract.xǁ_Extractionǁgo__mutmut_146":
        "the temp folder is made just before the try: rmtree finds it",
    "easy_oww.archives.extract.xǁ_Extractionǁgo__mutmut_147":
        "the temp folder is made just before the try: rmtree finds it",
    "easy_oww.archives.extract.xǁ_Extractionǁ_read_journal__mutmut_3":
        "encoding=None: the journal is json.dumps output, ASCII",
    "easy_oww.archives.extract.xǁ_Extractionǁ_read_journal__mutmut_5":
        "encoding=None: the journal is json.dumps output, ASCII",
    "easy_oww.archives.extract.xǁ_Extractionǁ_read_journal__mutmut_7":
        "'UTF-8' names the same codec",
    "easy_oww.archives.extract.x__unlink__mutmut_1":
        "every caller removes a temp file it has just made: FileNotFoundError does not arise",
    "easy_oww.archives.extract.xǁ_Extractionǁ_make_link__mutmut_16":
        "a symlink's text is never empty: check_link refuses an empty target",
    "easy_oww.archives.extract.xǁ_Extractionǁ_make_link__mutmut_20":
        "a hard link's target is '' only for the target folder: not a file, refused (as XXXX)",
    "easy_oww.archives.extract.x__file_mode__mutmut_3":
        "the mask set while reading the umask is put back on the next line: only the old counts",
    "easy_oww.archives.extract.xǁ_ZipArchiveǁentries__mutmut_12":
        "a member that is not a link never has its target read ('' or None alike)",
    "easy_oww.archives.extract.xǁ_ZipArchiveǁentries__mutmut_16":
        "a 4096-byte link target is refused either way: symlink() counts the NUL in PATH_MAX",
    "easy_oww.archives.extract.xǁ_ZipArchiveǁentries__mutmut_20": "decode()'s default is UTF-8",
    "easy_oww.archives.extract.xǁ_ZipArchiveǁentries__mutmut_24": "'UTF-8' names the same codec",
    "easy_oww.archives.extract.xǁ_Extractionǁ_load_checksums__mutmut_9":
        "'UTF-8' names the same codec",
    "easy_oww.archives.extract.xǁ_Extractionǁ_write_and_commit__mutmut_37":
        "memory only: the in-flight count then holds one member (64 MiB at most, under the "
        "256 MiB cap) and the throttle eases; the outputs are the same",
    "easy_oww.archives.extract.xǁ_Extractionǁ_record__mutmut_21":
        "speed only: the journal fsynced about once a second without `durable` too",
    "easy_oww.archives.extract.xǁ_LinkGuardǁcheck_path__mutmut_6":
        "the extra prefix checked is '', which is never a link's path",
    "easy_oww.archives.extract.xǁ_Extractionǁ__init____mutmut_72":
        "_root_real is set by go() before anything reads it",
    "easy_oww.archives.extract.xǁ_Extractionǁ__init____mutmut_73":
        "_root_real is set by go() before anything reads it",
    "easy_oww.archives.extract.xǁ_Extractionǁ_plan__mutmut_64": "hard=None is as false as False",
    "easy_oww.archives.extract.xǁ_Extractionǁgo__mutmut_9":
        "leftovers of a killed run are removed by the finally's rmtree anyway, and temp names "
        "are opened afresh ('wb'): the outputs are the same",
    "easy_oww.archives.extract.xǁ_Extractionǁgo__mutmut_31":
        "exist_ok=None: the folder was removed on the line before, so mkdir never finds it",
    "easy_oww.archives.extract.xǁ_Extractionǁgo__mutmut_32":
        "exist_ok=False: the folder was removed on the line before, so mkdir never finds it",
    "easy_oww.archives.extract.xǁ_Extractionǁgo__mutmut_35":
        "results are ordered by `order`, counted from 1 or 0 alike",
    "easy_oww.archives.extract.xǁ_Extractionǁgo__mutmut_59":
        "results are ordered by `order`, counted by 2 or 1 alike",
    "easy_oww.archives.extract.xǁ_Extractionǁgo__mutmut_40":
        "speed only: the pool's size (None: the executor's default)",
    "easy_oww.archives.extract.xǁ_Extractionǁgo__mutmut_42": "speed only: the pool's size",
    "easy_oww.archives.extract.xǁ_Extractionǁgo__mutmut_43": "speed only: the pool's size",
    "easy_oww.archives.extract.xǁ_Extractionǁgo__mutmut_44": "speed only: the pool's size",
    "easy_oww.archives.extract.xǁ_Extractionǁgo__mutmut_45": "speed only: the pool's size",
    "easy_oww.archives.extract.xǁ_Extractionǁgo__mutmut_49":
        "encoding=None: the journal is json.dumps output, ASCII",
    "easy_oww.archives.extract.xǁ_Extractionǁgo__mutmut_52":
        "encoding left out: the journal is json.dumps output, ASCII",
    "easy_oww.archives.extract.xǁ_Extractionǁgo__mutmut_56": "'UTF-8' names the same codec",
    "easy_oww.archives.extract.xǁ_Extractionǁgo__mutmut_98":
        "block=None is as false as False",
    "easy_oww.archives.extract.xǁ_Extractionǁ__init____mutmut_69":
        "temp names counted from 1 or 2 alike: unique either way",
    "easy_oww.archives.extract.xǁ_Extractionǁ__init____mutmut_77":
        "memory only: the in-flight count one byte high",
    "easy_oww.archives.extract.xǁ_Extractionǁ_submit_file__mutmut_10":
        "a member of exactly 64 MiB streamed instead of buffered: the same bytes either way",
    "easy_oww.archives.extract.xǁ_Extractionǁ_submit_file__mutmut_18":
        "memory only: the in-flight count too low, the throttle eases; same outputs",
    "easy_oww.archives.extract.xǁ_Extractionǁ_submit_file__mutmut_19":
        "memory only: the in-flight count too low, the throttle eases; same outputs",
    "easy_oww.archives.extract.xǁ_Extractionǁ_guarded__mutmut_7":
        "usedforsecurity only matters on a FIPS build; the digest is the same",
    "easy_oww.archives.extract.xǁ_Extractionǁ_guarded__mutmut_8":
        "usedforsecurity only matters on a FIPS build; the digest is the same",
    "easy_oww.archives.extract.xǁ_Extractionǁ_tmp_path__mutmut_2":
        "temp names counting down instead of up are as unique",
    "easy_oww.archives.extract.xǁ_Extractionǁ_tmp_path__mutmut_3":
        "temp names counting by two are as unique",
    "easy_oww.archives.extract.xǁ_Extractionǁ_check_parent__mutmut_11":
        "speed only: a parent folder checked again for each member, not once",
    "easy_oww.archives.extract.xǁ_Guardǁmember_limit__mutmut_4": "float('INF') is inf",
    "easy_oww.archives.extract.xǁ_Extractionǁ__init____mutmut_1":
        "a default no caller relies on: extract() always passes flatten",
    "easy_oww.archives.extract.xǁ_Extractionǁ__init____mutmut_7":
        "getattr(None, 'settings', None) is None, as the else gives",
    "easy_oww.archives.extract.xǁ_Extractionǁ_record__mutmut_22":
        "speed only: the journal fsynced after every member (it only saves a re-run's work: "
        "each output is fsynced before its rename)",
    "easy_oww.archives.extract.xǁ_Extractionǁ_record__mutmut_23":
        "the journal's sync interval by a hair (>= 1.0 s): how much a crash redoes, not what",
    "easy_oww.archives.extract.xǁ_Extractionǁ_record__mutmut_24":
        "the journal's sync interval (2 s): how much a crash redoes, not what comes out",
    "easy_oww.archives.splitzip.xǁMemberStreamǁ__init____mutmut_5":
        "_pos = 1 on an empty buffer: the first read refills it and sets _pos to 0",
    "easy_oww.archives.splitzip.xǁMemberStreamǁ__init____mutmut_6": "None is as false as False",
    "easy_oww.archives.splitzip.xǁMemberStreamǁread__mutmut_9":
        "_pos = 1 on the emptied buffer: reads after the end return b'' either way",
    "easy_oww.archives.splitzip.xǁMemberStreamǁread__mutmut_10":
        "_done = False after reading all: the spent iterator keeps raising StopIteration",
    "easy_oww.archives.splitzip.xǁMemberStreamǁread__mutmut_19":
        "_done = None at the end: the spent iterator keeps raising StopIteration",
    "easy_oww.archives.splitzip.xǁMemberStreamǁread__mutmut_20":
        "_done = False at the end: the spent iterator keeps raising StopIteration",
    "easy_oww.archives.splitzip.xǁMemberStreamǁdrain__mutmut_3":
        "drain's reset of _pos/_done: the spent iterator gives nothing more either way",
    "easy_oww.archives.splitzip.xǁMemberStreamǁdrain__mutmut_4":
        "drain's reset of _pos/_done: the spent iterator gives nothing more either way",
    "easy_oww.datasets.cache.xǁCacheManagerǁ_parse__mutmut_3":
        "encoding=None: the manifest is json.dumps output, ASCII, read alike by any locale",
    "easy_oww.datasets.cache.xǁCacheManagerǁ_parse__mutmut_5": "'UTF-8' names the same codec",
    "easy_oww.datasets.cache.xǁCacheManagerǁupdate__mutmut_8":
        "indent/sort_keys change the manifest's layout, not what it says",
    "easy_oww.datasets.cache.xǁCacheManagerǁupdate__mutmut_9":
        "indent/sort_keys change the manifest's layout, not what it says",
    "easy_oww.datasets.cache.xǁCacheManagerǁupdate__mutmut_11":
        "indent/sort_keys change the manifest's layout, not what it says",
    "easy_oww.datasets.cache.xǁCacheManagerǁupdate__mutmut_12":
        "indent/sort_keys change the manifest's layout, not what it says",
    "easy_oww.datasets.cache.xǁCacheManagerǁupdate__mutmut_13":
        "indent/sort_keys change the manifest's layout, not what it says",
    "easy_oww.datasets.cache.xǁCacheManagerǁupdate__mutmut_14":
        "indent/sort_keys change the manifest's layout, not what it says",
    "easy_oww.datasets.cache.xǁCacheManagerǁadd_entry__mutmut_18":
        "file_hash's default algorithm is sha256, the one named",
    "easy_oww.datasets.cache.xǁCacheManagerǁload__mutmut_6":
        "the lambda's value is ignored: update applies it for its side effect",
    "easy_oww.datasets.cache.xǁCacheManagerǁrelative__mutmut_4":
        "datasets_dir / an absolute path is that path",
    "easy_oww.datasets.cache.xǁCacheManagerǁrelative__mutmut_5":
        "a relative path not joined fails relative_to and is returned as the same string",
    "easy_oww.datasets.cache.xǁCacheManagerǁabsolute__mutmut_3":
        "datasets_dir / an absolute path is that path",
    "easy_oww.datasets.cache.xǁCacheManagerǁrecord_failure__mutmut_12":
        "the new entry's complete is set to False on the next line",
    "easy_oww.datasets.cache.xǁCacheManagerǁmark_complete__mutmut_11":
        "the new entry's complete is set on the next line",
    "easy_oww.datasets.cache.xǁCacheManagerǁremove_entry__mutmut_1":
        "update always runs change, which sets found",
    "easy_oww.datasets.cache.xǁCacheManagerǁremove_entry__mutmut_2":
        "update always runs change, which sets found",
    "easy_oww.transfer.segments.x_split__mutmut_15":
        "a gap exactly 1.5 targets long, cut (t + t/2) or not: both within the 1.5 bound",
    "easy_oww.transfer.resume.x_plan_resume__mutmut_51":
        "(size or 1) differs only when size is None, and then use_segments is False anyway",
    "easy_oww.freesound.backup.x_create_backup__mutmut_3":
        "mkdir without parents: the library's folder exists (the library is open in it)",
    "easy_oww.freesound.backup.x_create_backup__mutmut_5":
        "mkdir without parents: the library's folder exists (the library is open in it)",
    "easy_oww.freesound.backup.x_create_backup__mutmut_7":
        "mkdir without parents: the library's folder exists (the library is open in it)",
    "easy_oww.freesound.backup.x_create_backup__mutmut_24":
        "the snapshot's temp suffix: no one reads it; the sweep matches the prefix",
    "easy_oww.freesound.backup.x_create_backup__mutmut_27":
        "the snapshot's temp suffix: no one reads it; the sweep matches the prefix",
    "easy_oww.freesound.backup.x_create_backup__mutmut_31":
        "the snapshot's temp suffix: no one reads it; the sweep matches the prefix",
    "easy_oww.freesound.backup.x_create_backup__mutmut_32":
        "the snapshot's temp suffix: no one reads it; the sweep matches the prefix",
    "easy_oww.freesound.backup.x_create_backup__mutmut_55":
        "GzipFile's mode left out: it takes the 'wb' of the file it is given",
    "easy_oww.freesound.backup.x_create_backup__mutmut_60":
        "GzipFile's mode left out: it takes the 'wb' of the file it is given",
    "easy_oww.freesound.backup.x_create_backup__mutmut_62":
        "the compression level: the size and the time, not the bytes restored",
    "easy_oww.freesound.backup.x_create_backup__mutmut_68":
        "the compression level: the size and the time, not the bytes restored",
    "easy_oww.freesound.backup.x_create_backup__mutmut_72":
        "the copy's chunk size (0 or None: shutil's default): memory, not bytes",
    "easy_oww.freesound.backup.x_create_backup__mutmut_75":
        "the copy's chunk size (0 or None: shutil's default): memory, not bytes",
    "easy_oww.freesound.backup.x_create_backup__mutmut_76":
        "the copy's chunk size (0 or None: shutil's default): memory, not bytes",
    "easy_oww.freesound.backup.x_create_backup__mutmut_77":
        "the copy's chunk size (0 or None: shutil's default): memory, not bytes",
    "easy_oww.freesound.backup.x_create_backup__mutmut_78":
        "the copy's chunk size (0 or None: shutil's default): memory, not bytes",
    "easy_oww.freesound.backup_files.x_check_backup__mutmut_8":
        "the check's temp suffix: no one reads it; the sweep matches the prefix",
    "easy_oww.freesound.backup_files.x_check_backup__mutmut_11":
        "the check's temp suffix: no one reads it; the sweep matches the prefix",
    "easy_oww.freesound.backup_files.x_check_backup__mutmut_15":
        "the check's temp suffix: no one reads it; the sweep matches the prefix",
    "easy_oww.freesound.backup_files.x_check_backup__mutmut_16":
        "the check's temp suffix: no one reads it; the sweep matches the prefix",
    "easy_oww.freesound.backup_files.x_check_backup__mutmut_21":
        "gzip.open's mode left out: its default is 'rb'",
    "easy_oww.freesound.backup_files.x_check_backup__mutmut_32":
        "the copy's chunk size (0 or None: shutil's default): memory, not bytes",
    "easy_oww.freesound.backup_files.x_check_backup__mutmut_35":
        "the copy's chunk size (0 or None: shutil's default): memory, not bytes",
    "easy_oww.freesound.backup_files.x_check_backup__mutmut_36":
        "the copy's chunk size (0 or None: shutil's default): memory, not bytes",
    "easy_oww.freesound.backup_files.x_check_backup__mutmut_37":
        "the copy's chunk size (0 or None: shutil's default): memory, not bytes",
    "easy_oww.freesound.backup_files.x_check_backup__mutmut_38":
        "the copy's chunk size (0 or None: shutil's default): memory, not bytes",
    "easy_oww.freesound.backup_files.x_check_backup__mutmut_47":
        "SQL keywords and pragma names are case-insensitive",
    "easy_oww.freesound.backup_files.x_check_backup__mutmut_48":
        "SQL keywords and pragma names are case-insensitive",
    "easy_oww.freesound.backup_files.x_check_backup__mutmut_56":
        "SQL keywords and pragma names are case-insensitive",
    "easy_oww.freesound.backup_files.x_check_backup__mutmut_57":
        "SQL keywords and pragma names are case-insensitive",
    "easy_oww.freesound.backup_files.x_check_backup__mutmut_63":
        "SQL keywords and pragma names are case-insensitive",
    "easy_oww.freesound.backup_files.x_check_backup__mutmut_75":
        "every library schema has tables beyond samples and edges, so < and <= agree",
    "easy_oww.freesound.seed_pickle.x__decompress__mutmut_45":
        "read(limit + 2): one more byte read, still more than the limit: refused alike",
    "easy_oww.freesound.seed_pickle.x__jsonable__mutmut_15":
        "bytes.decode's default codec is utf-8, the one named",
    "easy_oww.freesound.seed_pickle.x__jsonable__mutmut_18":
        "'UTF-8' names the same codec",
    "easy_oww.freesound.seed_pickle.x_import_seed_pickle_run__mutmut_6":
        "'' and None are both false: the finally reads only whether a result came",
    # freesound/store.py, one by one (its SQL whose case alone changed: _STORE_SQL_CASE below)
    "easy_oww.freesound.store.x__sqlite_header_problem__mutmut_12":
        "read(101): one byte more read; only the first 100 are looked at",
    "easy_oww.freesound.store.xǁFreesoundLibraryǁbulk_add__mutmut_40":
        "a batch of 5001 rows, not 5000: the same rows are stored in the same transaction",
    "easy_oww.freesound.store.xǁFreesoundLibraryǁbulk_add__mutmut_41":
        "a batch of 5001 rows, not 5000: the same rows are stored in the same transaction",
    "easy_oww.freesound.store.xǁFreesoundLibraryǁverify__mutmut_11":
        "= for +=: problems is still empty there",
    "easy_oww.freesound.store.xǁFreesoundLibraryǁadd_edge__mutmut_60":
        "2 << 30 for an unranked link: any stand-in above every real rank sorts alike",
    "easy_oww.freesound.store.xǁFreesoundLibraryǁ_fill_graph__mutmut_54":
        "'USERNAME' is only a column name in the SQL, which is case-insensitive",
    "easy_oww.freesound.store.xǁFreesoundLibraryǁ_fill_graph__mutmut_56":
        "'PACK_ID' is only a column name in the SQL, which is case-insensitive",
    "easy_oww.freesound.store.xǁFreesoundLibraryǁadd_edge__mutmut_61":
        "1 << 31 for an unranked link: any stand-in above every real rank sorts alike",
    # freesound/crawl.py (2026-11-26)
    "easy_oww.freesound.crawl.xǁGrowOptionsǁaccepts__mutmut_7":
        "a missing license read as 'XXXX', not '': neither is a wanted name nor holds a URL part",
    "easy_oww.freesound.crawl.xǁGrowOptionsǁaccepts__mutmut_15":
        "every LICENSES name has its URL parts: .get's default is never used",
    "easy_oww.freesound.crawl.xǁGrowOptionsǁaccepts__mutmut_17":
        "every LICENSES name has its URL parts: .get's default is never used",
    "easy_oww.freesound.crawl.xǁCrawlerǁ_seed_pick__mutmut_11":
        "limit=50 is seed_candidates' own default",
    "easy_oww.freesound.crawl.xǁCrawlerǁ_maybe_backup__mutmut_5":
        "k > x / e and k > x // e agree for whole numbers k, x, e (k * e is a whole multiple)",
    "easy_oww.freesound.crawl.xǁCrawlerǁ_expand__mutmut_78":
        "remember_seen itself leaves an id already stored alone",
    "easy_oww.freesound.crawl.xǁCrawlerǁ_fetch_seed_page__mutmut_62":
        "remember_seen itself leaves an id already stored alone",
    "easy_oww.freesound.crawl.xǁCrawlerǁ_next_page_query__mutmut_5":
        "step 1 searches each query's first page before step 7 asks for a next: no row missing",
    "easy_oww.freesound.crawl.x__similarity__mutmut_34":
        "count >= rank >= 1 at every call: with count 1 the rank is 1 and the fraction 0 anyway",
    "easy_oww.freesound.crawl.xǁCrawlerǁrun__mutmut_7":
        "requests=None: as false as False, the only thing _loop asks of it",
    "easy_oww.freesound.crawl.xǁCrawlerǁrun__mutmut_11":
        "_finish (in the finally) sets budget_resets_at again, from the same budget",
    "easy_oww.freesound.crawl.xǁCrawlerǁ_loop__mutmut_3": "None is as false as False",
    "easy_oww.freesound.crawl.xǁCrawlerǁ_loop__mutmut_45":
        "linked=None: as false as False, the only thing _candidate asks of it",
    "easy_oww.freesound.crawl.xǁCrawlerǁ__init____mutmut_6":
        "the default on_commit's return value is never read",
    "easy_oww.freesound.crawl.xǁCrawlerǁ__init____mutmut_9":
        "the default on_progress's return value is never read",
    "easy_oww.freesound.crawl.xǁCrawlerǁ__init____mutmut_14":
        "the default log's return value is never read",
    "easy_oww.freesound.crawl.xǁCrawlerǁ__init____mutmut_22":
        "run() sets run_id before anything reads it",
    "easy_oww.freesound.crawl.xǁCrawlerǁ__init____mutmut_23":
        "run() sets run_id before anything reads it",
}


# freesound/store.py (2026-11-26): mutants that change only the case of SQL text (mutmut's
# lower- and upper-casing of a string), checked to keep every quoted literal ('deleted',
# '$.id') as it was.
_STORE_SQL_CASE = [
    "xǁFreesoundLibraryǁremember_seen__mutmut_46",
    "xǁFreesoundLibraryǁremember_seen__mutmut_47",
    "xǁFreesoundLibraryǁ_check_file__mutmut_23",
    "xǁFreesoundLibraryǁ_check_file__mutmut_24",
    "xǁFreesoundLibraryǁ_setup__mutmut_4",
    "xǁFreesoundLibraryǁ_setup__mutmut_5",
    "xǁFreesoundLibraryǁ_setup__mutmut_9",
    "xǁFreesoundLibraryǁ_setup__mutmut_10",
    "xǁFreesoundLibraryǁ_setup__mutmut_26",
    "xǁFreesoundLibraryǁ_setup__mutmut_27",
    "xǁFreesoundLibraryǁ_setup__mutmut_31",
    "xǁFreesoundLibraryǁ_setup__mutmut_32",
    "xǁFreesoundLibraryǁ_setup__mutmut_36",
    "xǁFreesoundLibraryǁ_setup__mutmut_37",
    "xǁFreesoundLibraryǁ_migrate__mutmut_3",
    "xǁFreesoundLibraryǁ_migrate__mutmut_7",
    "xǁFreesoundLibraryǁ_migrate__mutmut_8",
    "xǁFreesoundLibraryǁ_migrate__mutmut_27",
    "xǁFreesoundLibraryǁ_migrate__mutmut_31",
    "xǁFreesoundLibraryǁ_migrate__mutmut_34",
    "xǁFreesoundLibraryǁhas__mutmut_7",
    "xǁFreesoundLibraryǁhas__mutmut_8",
    "xǁFreesoundLibraryǁstored_ids__mutmut_4",
    "xǁFreesoundLibraryǁstored_ids__mutmut_5",
    "xǁFreesoundLibraryǁadd_sample__mutmut_22",
    "xǁFreesoundLibraryǁadd_sample__mutmut_23",
    "xǁFreesoundLibraryǁadd_sample__mutmut_58",
    "xǁFreesoundLibraryǁadd_sample__mutmut_59",
    "xǁFreesoundLibraryǁ_materialise__mutmut_7",
    "xǁFreesoundLibraryǁ_materialise__mutmut_8",
    "xǁFreesoundLibraryǁ_materialise__mutmut_10",
    "xǁFreesoundLibraryǁ_materialise__mutmut_11",
    "xǁFreesoundLibraryǁ_materialise__mutmut_26",
    "xǁFreesoundLibraryǁ_materialise__mutmut_27",
    "xǁFreesoundLibraryǁ_materialise__mutmut_35",
    "xǁFreesoundLibraryǁ_materialise__mutmut_36",
    "xǁFreesoundLibraryǁ_materialise__mutmut_44",
    "xǁFreesoundLibraryǁ_materialise__mutmut_45",
    "xǁFreesoundLibraryǁadd_edge__mutmut_10",
    "xǁFreesoundLibraryǁadd_edge__mutmut_11",
    "xǁFreesoundLibraryǁadd_edge__mutmut_21",
    "xǁFreesoundLibraryǁadd_edge__mutmut_22",
    "xǁFreesoundLibraryǁadd_edge__mutmut_31",
    "xǁFreesoundLibraryǁadd_edge__mutmut_32",
    "xǁFreesoundLibraryǁadd_edge__mutmut_40",
    "xǁFreesoundLibraryǁadd_edge__mutmut_41",
    "xǁFreesoundLibraryǁadd_edge__mutmut_51",
    "xǁFreesoundLibraryǁadd_edge__mutmut_52",
    "xǁFreesoundLibraryǁadd_edge__mutmut_54",
    "xǁFreesoundLibraryǁadd_edge__mutmut_55",
    "xǁFreesoundLibraryǁget__mutmut_7",
    "xǁFreesoundLibraryǁget__mutmut_8",
    "xǁFreesoundLibraryǁedges_of__mutmut_6",
    "xǁFreesoundLibraryǁedges_of__mutmut_7",
    "xǁFreesoundLibraryǁedges_of__mutmut_9",
    "xǁFreesoundLibraryǁedges_of__mutmut_10",
    "xǁFreesoundLibraryǁremember_seen__mutmut_30",
    "xǁFreesoundLibraryǁremember_seen__mutmut_31",
    "xǁFreesoundLibraryǁremember_seen__mutmut_37",
    "xǁFreesoundLibraryǁremember_seen__mutmut_38",
    "xǁFreesoundLibraryǁremember_seen__mutmut_40",
    "xǁFreesoundLibraryǁremember_seen__mutmut_41",
    "xǁFreesoundLibraryǁremember_seen__mutmut_43",
    "xǁFreesoundLibraryǁremember_seen__mutmut_49",
    "xǁFreesoundLibraryǁremember_seen__mutmut_51",
    "xǁFreesoundLibraryǁbest_candidates__mutmut_8",
    "xǁFreesoundLibraryǁbest_candidates__mutmut_11",
    "xǁFreesoundLibraryǁbest_candidates__mutmut_12",
    "xǁFreesoundLibraryǁmark_seen_bad__mutmut_6",
    "xǁFreesoundLibraryǁmark_seen_bad__mutmut_7",
    "xǁFreesoundLibraryǁmark_seen_bad__mutmut_9",
    "xǁFreesoundLibraryǁmark_seen_bad__mutmut_10",
    "xǁFreesoundLibraryǁ_counts__mutmut_9",
    "xǁFreesoundLibraryǁ_counts__mutmut_10",
    "xǁFreesoundLibraryǁ_counts__mutmut_15",
    "xǁFreesoundLibraryǁ_counts__mutmut_16",
    "xǁFreesoundLibraryǁ_counts__mutmut_21",
    "xǁFreesoundLibraryǁ_counts__mutmut_22",
    "xǁFreesoundLibraryǁ_counts__mutmut_27",
    "xǁFreesoundLibraryǁ_counts__mutmut_28",
    "xǁFreesoundLibraryǁ_counts__mutmut_33",
    "xǁFreesoundLibraryǁ_counts__mutmut_34",
    "xǁFreesoundLibraryǁ_counts__mutmut_39",
    "xǁFreesoundLibraryǁ_counts__mutmut_40",
    "xǁFreesoundLibraryǁ_counts__mutmut_45",
    "xǁFreesoundLibraryǁ_counts__mutmut_46",
    "xǁFreesoundLibraryǁ_counts__mutmut_51",
    "xǁFreesoundLibraryǁ_counts__mutmut_52",
    "xǁFreesoundLibraryǁ_counts__mutmut_57",
    "xǁFreesoundLibraryǁ_counts__mutmut_58",
    "xǁFreesoundLibraryǁ_counts__mutmut_63",
    "xǁFreesoundLibraryǁ_counts__mutmut_64",
    "xǁFreesoundLibraryǁstats__mutmut_6",
    "xǁFreesoundLibraryǁstats__mutmut_7",
    "xǁFreesoundLibraryǁverify__mutmut_5",
    "xǁFreesoundLibraryǁverify__mutmut_6",
    "xǁFreesoundLibraryǁverify__mutmut_19",
    "xǁFreesoundLibraryǁverify__mutmut_20",
    "xǁFreesoundLibraryǁverify__mutmut_22",
    "xǁFreesoundLibraryǁverify__mutmut_23",
    "xǁFreesoundLibraryǁverify__mutmut_27",
    "xǁFreesoundLibraryǁverify__mutmut_28",
    "xǁFreesoundLibraryǁverify__mutmut_30",
    "xǁFreesoundLibraryǁverify__mutmut_31",
    "xǁFreesoundLibraryǁverify__mutmut_35",
    "xǁFreesoundLibraryǁverify__mutmut_36",
    "xǁFreesoundLibraryǁverify__mutmut_40",
    "xǁFreesoundLibraryǁverify__mutmut_41",
    "xǁFreesoundLibraryǁverify__mutmut_43",
    "xǁFreesoundLibraryǁverify__mutmut_44",
    "xǁFreesoundLibraryǁverify__mutmut_48",
    "xǁFreesoundLibraryǁverify__mutmut_49",
    "xǁFreesoundLibraryǁverify__mutmut_51",
    "xǁFreesoundLibraryǁverify__mutmut_52",
    "xǁFreesoundLibraryǁverify__mutmut_54",
    "xǁFreesoundLibraryǁverify__mutmut_55",
    "xǁFreesoundLibraryǁverify__mutmut_60",
    "xǁFreesoundLibraryǁverify__mutmut_61",
    "xǁFreesoundLibraryǁverify__mutmut_65",
    "xǁFreesoundLibraryǁverify__mutmut_70",
    "xǁFreesoundLibraryǁverify__mutmut_71",
    "xǁFreesoundLibraryǁverify__mutmut_73",
    "xǁFreesoundLibraryǁverify__mutmut_74",
    "xǁFreesoundLibraryǁ_fill_graph__mutmut_4",
    "xǁFreesoundLibraryǁ_fill_graph__mutmut_5",
    "xǁFreesoundLibraryǁ_fill_graph__mutmut_7",
    "xǁFreesoundLibraryǁ_fill_graph__mutmut_8",
    "xǁFreesoundLibraryǁ_fill_graph__mutmut_37",
    "xǁFreesoundLibraryǁ_fill_graph__mutmut_38",
    "xǁFreesoundLibraryǁbackup_to__mutmut_6",
    "xǁFreesoundLibraryǁbackup_to__mutmut_7",
    "x__sample_join__mutmut_26",
    "x__sample_join__mutmut_27",
    "x__seen_join__mutmut_11",
    "x__seen_join__mutmut_12",
    # 2026-11-26, second pass: the rest of the SQL text, and names that only ever reach SQL
    # (column lists, table names formatted into statements, `max` and the column in
    # _either, the PRAGMA synchronous value)
    "x_fold_wal__mutmut_7",
    "x_fold_wal__mutmut_8",
    "xǁFreesoundLibraryǁ_setup_read_only__mutmut_3",
    "xǁFreesoundLibraryǁ_setup_read_only__mutmut_4",
    "xǁFreesoundLibraryǁ_setup_read_only__mutmut_8",
    "xǁFreesoundLibraryǁ_setup_read_only__mutmut_9",
    "xǁFreesoundLibraryǁ_setup_read_only__mutmut_13",
    "xǁFreesoundLibraryǁ_setup_read_only__mutmut_14",
    "xǁFreesoundLibraryǁget_meta__mutmut_7",
    "xǁFreesoundLibraryǁget_meta__mutmut_8",
    "xǁFreesoundLibraryǁset_meta__mutmut_6",
    "xǁFreesoundLibraryǁset_meta__mutmut_7",
    "xǁFreesoundLibraryǁseen_ids__mutmut_4",
    "xǁFreesoundLibraryǁseen_ids__mutmut_5",
    "xǁFreesoundLibraryǁraw_samples__mutmut_4",
    "xǁFreesoundLibraryǁraw_samples__mutmut_5",
    "xǁFreesoundLibraryǁaudio_wanted__mutmut_7",
    "xǁFreesoundLibraryǁaudio_wanted__mutmut_8",
    "xǁFreesoundLibraryǁaudio_wanted__mutmut_10",
    "xǁFreesoundLibraryǁaudio_wanted__mutmut_11",
    "xǁFreesoundLibraryǁaudio_wanted__mutmut_13",
    "xǁFreesoundLibraryǁaudio_wanted__mutmut_14",
    "xǁFreesoundLibraryǁaudio_of__mutmut_7",
    "xǁFreesoundLibraryǁaudio_of__mutmut_8",
    "xǁFreesoundLibraryǁaudio_of__mutmut_10",
    "xǁFreesoundLibraryǁaudio_of__mutmut_11",
    "xǁFreesoundLibraryǁaudio_files__mutmut_3",
    "xǁFreesoundLibraryǁaudio_files__mutmut_4",
    "xǁFreesoundLibraryǁrecord_audio__mutmut_6",
    "xǁFreesoundLibraryǁrecord_audio__mutmut_7",
    "xǁFreesoundLibraryǁforget_audio__mutmut_6",
    "xǁFreesoundLibraryǁforget_audio__mutmut_7",
    "xǁFreesoundLibraryǁseed_candidates__mutmut_8",
    "xǁFreesoundLibraryǁseed_candidates__mutmut_11",
    "xǁFreesoundLibraryǁseed_candidates__mutmut_12",
    "xǁFreesoundLibraryǁcandidate_links__mutmut_9",
    "xǁFreesoundLibraryǁcandidate_links__mutmut_12",
    "xǁFreesoundLibraryǁcandidate_links__mutmut_13",
    "xǁFreesoundLibraryǁseen_metadata__mutmut_7",
    "xǁFreesoundLibraryǁseen_metadata__mutmut_8",
    "xǁFreesoundLibraryǁnext_to_expand__mutmut_4",
    "xǁFreesoundLibraryǁnext_to_expand__mutmut_5",
    "xǁFreesoundLibraryǁnext_to_expand__mutmut_7",
    "xǁFreesoundLibraryǁnext_to_expand__mutmut_8",
    "xǁFreesoundLibraryǁmark_expanded__mutmut_8",
    "xǁFreesoundLibraryǁmark_expanded__mutmut_9",
    "xǁFreesoundLibraryǁmark_expanded__mutmut_11",
    "xǁFreesoundLibraryǁmark_expanded__mutmut_12",
    "xǁFreesoundLibraryǁmark_deleted__mutmut_6",
    "xǁFreesoundLibraryǁmark_deleted__mutmut_7",
    "xǁFreesoundLibraryǁrecord_problem__mutmut_6",
    "xǁFreesoundLibraryǁrecord_problem__mutmut_7",
    "xǁFreesoundLibraryǁproblems__mutmut_7",
    "xǁFreesoundLibraryǁproblems__mutmut_8",
    "xǁFreesoundLibraryǁseed_state__mutmut_7",
    "xǁFreesoundLibraryǁseed_state__mutmut_8",
    "xǁFreesoundLibraryǁset_seed_state__mutmut_6",
    "xǁFreesoundLibraryǁset_seed_state__mutmut_7",
    "xǁFreesoundLibraryǁset_seed_state__mutmut_9",
    "xǁFreesoundLibraryǁset_seed_state__mutmut_10",
    "xǁFreesoundLibraryǁstart_run__mutmut_3",
    "xǁFreesoundLibraryǁstart_run__mutmut_11",
    "xǁFreesoundLibraryǁupdate_run__mutmut_7",
    "xǁFreesoundLibraryǁupdate_run__mutmut_8",
    "xǁFreesoundLibraryǁupdate_run__mutmut_10",
    "xǁFreesoundLibraryǁupdate_run__mutmut_11",
    "xǁFreesoundLibraryǁupdate_run__mutmut_19",
    "xǁFreesoundLibraryǁupdate_run__mutmut_20",
    "xǁFreesoundLibraryǁupdate_run__mutmut_22",
    "xǁFreesoundLibraryǁupdate_run__mutmut_23",
    "xǁFreesoundLibraryǁhistory__mutmut_4",
    "xǁFreesoundLibraryǁhistory__mutmut_5",
    "xǁFreesoundLibraryǁhistory__mutmut_7",
    "xǁFreesoundLibraryǁhistory__mutmut_8",
    "xǁFreesoundLibraryǁmap_rows__mutmut_3",
    "xǁFreesoundLibraryǁmap_rows__mutmut_4",
    "xǁFreesoundLibraryǁmap_rows__mutmut_6",
    "xǁFreesoundLibraryǁmap_rows__mutmut_7",
    "xǁFreesoundLibraryǁedge_pairs__mutmut_3",
    "xǁFreesoundLibraryǁedge_pairs__mutmut_4",
    "xǁFreesoundLibraryǁpositions__mutmut_6",
    "xǁFreesoundLibraryǁpositions__mutmut_7",
    "xǁFreesoundLibraryǁsave_positions__mutmut_4",
    "xǁFreesoundLibraryǁsave_positions__mutmut_5",
    "xǁFreesoundLibraryǁsave_positions__mutmut_11",
    "xǁFreesoundLibraryǁsave_positions__mutmut_12",
    "xǁFreesoundLibraryǁcheckpoint__mutmut_4",
    "xǁFreesoundLibraryǁcheckpoint__mutmut_5",
    "xǁFreesoundLibraryǁinterchange__mutmut_5",
    "xǁFreesoundLibraryǁinterchange__mutmut_6",
    "xǁFreesoundLibraryǁinterchange__mutmut_8",
    "xǁFreesoundLibraryǁinterchange__mutmut_9",
    "xǁFreesoundLibraryǁinterchange__mutmut_13",
    "xǁFreesoundLibraryǁinterchange__mutmut_14",
    "xǁFreesoundLibraryǁinterchange__mutmut_16",
    "xǁFreesoundLibraryǁinterchange__mutmut_17",
    "xǁFreesoundLibraryǁinterchange__mutmut_21",
    "xǁFreesoundLibraryǁinterchange__mutmut_22",
    "xǁFreesoundLibraryǁinterchange__mutmut_24",
    "xǁFreesoundLibraryǁinterchange__mutmut_25",
    "xǁFreesoundLibraryǁinterchange__mutmut_29",
    "xǁFreesoundLibraryǁinterchange__mutmut_30",
    "xǁFreesoundLibraryǁgraph_rows__mutmut_4",
    "xǁFreesoundLibraryǁgraph_rows__mutmut_5",
    "xǁFreesoundLibraryǁgraph_rows__mutmut_7",
    "xǁFreesoundLibraryǁgraph_rows__mutmut_8",
    "xǁFreesoundLibraryǁgraph_rows__mutmut_17",
    "xǁFreesoundLibraryǁgraph_rows__mutmut_18",
    "xǁFreesoundLibraryǁgraph_rows__mutmut_20",
    "xǁFreesoundLibraryǁgraph_rows__mutmut_21",
    "xǁFreesoundLibraryǁ_derived_rows__mutmut_4",
    "xǁFreesoundLibraryǁ_derived_rows__mutmut_5",
    "xǁFreesoundLibraryǁlast_added__mutmut_3",
    "xǁFreesoundLibraryǁlast_added__mutmut_4",
    "xǁFreesoundLibraryǁmerge_staged__mutmut_6",
    "xǁFreesoundLibraryǁmerge_staged__mutmut_7",
    "xǁFreesoundLibraryǁmerge_staged__mutmut_12",
    "xǁFreesoundLibraryǁmerge_staged__mutmut_13",
    "x_create_staging__mutmut_7",
    "x_create_staging__mutmut_8",
    "x_create_staging__mutmut_11",
    "x_create_staging__mutmut_12",
    "xǁFreesoundLibraryǁset_seed_state__mutmut_12",
    "xǁFreesoundLibraryǁ_setup__mutmut_21",
    "xǁFreesoundLibraryǁ_setup__mutmut_23",
    "xǁFreesoundLibraryǁadd_sample__mutmut_36",
    "xǁFreesoundLibraryǁadd_sample__mutmut_38",
    "xǁFreesoundLibraryǁadd_sample__mutmut_40",
    "xǁFreesoundLibraryǁ_derived_rows__mutmut_7",
    "xǁFreesoundLibraryǁ_derived_rows__mutmut_9",
    "x__sample_join__mutmut_8",
    "x__sample_join__mutmut_10",
    "x__sample_join__mutmut_21",
    "x__sample_join__mutmut_23",
    "x__seen_join__mutmut_4",
    "x__seen_join__mutmut_8",
    "x__seen_join__mutmut_20",
    "x__seen_join__mutmut_22",
    "x_create_staging__mutmut_15",
    # bulk_add, _merge_attached and _stage_sql as they are after the 2026-11-26 changes
    "xǁFreesoundLibraryǁbulk_add__mutmut_21",
    "xǁFreesoundLibraryǁbulk_add__mutmut_22",
    "xǁFreesoundLibraryǁbulk_add__mutmut_53",
    "xǁFreesoundLibraryǁbulk_add__mutmut_54",
    "xǁFreesoundLibraryǁbulk_add__mutmut_60",
    "xǁFreesoundLibraryǁbulk_add__mutmut_61",
    "xǁFreesoundLibraryǁbulk_add__mutmut_64",
    "xǁFreesoundLibraryǁbulk_add__mutmut_65",
    "xǁFreesoundLibraryǁbulk_add__mutmut_67",
    "xǁFreesoundLibraryǁbulk_add__mutmut_68",
    "xǁFreesoundLibraryǁbulk_add__mutmut_76",
    "xǁFreesoundLibraryǁbulk_add__mutmut_77",
    "xǁFreesoundLibraryǁbulk_add__mutmut_79",
    "xǁFreesoundLibraryǁbulk_add__mutmut_80",
    "xǁFreesoundLibraryǁbulk_add__mutmut_82",
    "xǁFreesoundLibraryǁbulk_add__mutmut_83",
    "xǁFreesoundLibraryǁbulk_add__mutmut_86",
    "xǁFreesoundLibraryǁbulk_add__mutmut_87",
    "xǁFreesoundLibraryǁbulk_add__mutmut_89",
    "xǁFreesoundLibraryǁbulk_add__mutmut_90",
    "xǁFreesoundLibraryǁbulk_add__mutmut_96",
    "xǁFreesoundLibraryǁbulk_add__mutmut_97",
    "xǁFreesoundLibraryǁbulk_add__mutmut_101",
    "xǁFreesoundLibraryǁbulk_add__mutmut_102",
    "xǁFreesoundLibraryǁ_merge_attached__mutmut_10",
    "xǁFreesoundLibraryǁ_merge_attached__mutmut_11",
    "xǁFreesoundLibraryǁ_merge_attached__mutmut_13",
    "xǁFreesoundLibraryǁ_merge_attached__mutmut_14",
    "xǁFreesoundLibraryǁ_merge_attached__mutmut_18",
    "xǁFreesoundLibraryǁ_merge_attached__mutmut_19",
    "xǁFreesoundLibraryǁ_merge_attached__mutmut_21",
    "xǁFreesoundLibraryǁ_merge_attached__mutmut_22",
    "xǁFreesoundLibraryǁ_merge_attached__mutmut_26",
    "xǁFreesoundLibraryǁ_merge_attached__mutmut_27",
    "xǁFreesoundLibraryǁ_merge_attached__mutmut_29",
    "xǁFreesoundLibraryǁ_merge_attached__mutmut_30",
    "xǁFreesoundLibraryǁ_merge_attached__mutmut_32",
    "xǁFreesoundLibraryǁ_merge_attached__mutmut_33",
    "xǁFreesoundLibraryǁ_merge_attached__mutmut_35",
    "xǁFreesoundLibraryǁ_merge_attached__mutmut_36",
    "xǁFreesoundLibraryǁ_merge_attached__mutmut_62",
    "xǁFreesoundLibraryǁ_merge_attached__mutmut_63",
    "xǁFreesoundLibraryǁ_merge_attached__mutmut_65",
    "xǁFreesoundLibraryǁ_merge_attached__mutmut_66",
    "xǁFreesoundLibraryǁ_merge_attached__mutmut_69",
    "xǁFreesoundLibraryǁ_merge_attached__mutmut_70",
    "xǁFreesoundLibraryǁ_merge_attached__mutmut_72",
    "xǁFreesoundLibraryǁ_merge_attached__mutmut_73",
    "xǁFreesoundLibraryǁ_merge_attached__mutmut_92",
    "xǁFreesoundLibraryǁ_merge_attached__mutmut_93",
    "xǁFreesoundLibraryǁ_merge_attached__mutmut_95",
    "xǁFreesoundLibraryǁ_merge_attached__mutmut_96",
    "xǁFreesoundLibraryǁ_merge_attached__mutmut_104",
    "xǁFreesoundLibraryǁ_merge_attached__mutmut_105",
    "xǁFreesoundLibraryǁ_merge_attached__mutmut_107",
    "xǁFreesoundLibraryǁ_merge_attached__mutmut_108",
    "xǁFreesoundLibraryǁ_merge_attached__mutmut_40",
    "xǁFreesoundLibraryǁ_merge_attached__mutmut_42",
    "xǁFreesoundLibraryǁ_merge_attached__mutmut_44",
    "xǁFreesoundLibraryǁ_merge_attached__mutmut_46",
    "xǁFreesoundLibraryǁ_merge_attached__mutmut_48",
    "xǁFreesoundLibraryǁ_merge_attached__mutmut_59",
    "xǁFreesoundLibraryǁ_merge_attached__mutmut_76",
    "xǁFreesoundLibraryǁ_merge_attached__mutmut_78",
    "xǁFreesoundLibraryǁ_merge_attached__mutmut_80",
    "xǁFreesoundLibraryǁ_merge_attached__mutmut_85",
    "xǁFreesoundLibraryǁ_merge_attached__mutmut_89",
    "xǁFreesoundLibraryǁ_merge_attached__mutmut_100",
    "xǁFreesoundLibraryǁbulk_add__mutmut_5",
    "xǁFreesoundLibraryǁbulk_add__mutmut_7",
    "xǁFreesoundLibraryǁbulk_add__mutmut_9",
    "x__stage_sql__mutmut_14",
    "x__stage_sql__mutmut_20",
    "x__stage_sql__mutmut_25",
    "x__stage_sql__mutmut_29",
]
EQUIVALENT["easy_oww.freesound.store.x_fold_wal__mutmut_4"] = (
    "isolation_level left at '': Python opens a transaction only before INSERT/UPDATE/DELETE, "
    "and fold_wal runs one PRAGMA")
EQUIVALENT["easy_oww.freesound.store.x_create_staging__mutmut_4"] = (
    "isolation_level left at '': the staging file's one transaction is the explicit BEGIN "
    "either way (Python adds none while one is open)")
EQUIVALENT["easy_oww.freesound.store.xǁFreesoundLibraryǁ_connect_read_only__mutmut_1"] = (
    "`last` starts as '': both attempts set it (or raise) before the message reads it")
EQUIVALENT["easy_oww.freesound.store.xǁFreesoundLibraryǁ_connect_read_only__mutmut_4"] = (
    "'immutable=1XX' still reads as immutable (SQLite takes the leading digit); without mode=ro"
    " the open falls back to read-only where it cannot write, and nothing writes through this "
    "connection either way")
EQUIVALENT["easy_oww.freesound.store.xǁFreesoundLibraryǁ_connect_read_only__mutmut_13"] = (
    "isolation_level left at '': a read-only connection runs no INSERT/UPDATE/DELETE, the only "
    "statements Python wraps itself")
EQUIVALENT["easy_oww.freesound.store.xǁFreesoundLibraryǁ_connect_read_only__mutmut_15"] = (
    "connect's timeout is overridden at once by _setup_read_only's PRAGMA busy_timeout = 30000,"
    " its first statement")
EQUIVALENT["easy_oww.freesound.store.xǁFreesoundLibraryǁ_connect_read_only__mutmut_18"] = (
    "connect's timeout is overridden at once by _setup_read_only's PRAGMA busy_timeout = 30000,"
    " its first statement")
EQUIVALENT["easy_oww.freesound.store.xǁFreesoundLibraryǁ_setup_read_only__mutmut_21"] = (
    "create matters only when the file is missing; here it exists (the read-only connection "
    "just read it)")
EQUIVALENT["easy_oww.freesound.store.xǁFreesoundLibraryǁ_setup_read_only__mutmut_23"] = (
    "create matters only when the file is missing; here it exists (the read-only connection "
    "just read it)")
EQUIVALENT["easy_oww.freesound.store.xǁFreesoundLibraryǁ_setup_read_only__mutmut_24"] = (
    "create matters only when the file is missing; here it exists (the read-only connection "
    "just read it)")
EQUIVALENT["easy_oww.freesound.store.xǁFreesoundLibraryǁgraph_rows__mutmut_30"] = (
    "whole rows compare as the key does: the two streams never share a (source, target) (a "
    "derived pair with a stored edge is skipped)")
EQUIVALENT["easy_oww.freesound.store.xǁFreesoundLibraryǁgraph_rows__mutmut_33"] = (
    "whole rows compare as the key does: the two streams never share a (source, target) (a "
    "derived pair with a stored edge is skipped)")
EQUIVALENT["easy_oww.freesound.store.xǁFreesoundLibraryǁgraph_rows__mutmut_37"] = (
    "weight for kind breaks ties only between rows of one (source, target), which the two "
    "streams never share")
for _name in ("x__is_damage__mutmut_12", "x__is_damage__mutmut_13"):
    EQUIVALENT["easy_oww.freesound.store." + _name] = (
        "SQLite's one message with 'disk image' is 'database disk image is malformed', which "
        "'malformed' matches")
EQUIVALENT["easy_oww.freesound.store.xǁFreesoundLibraryǁaudio_wanted__mutmut_18"] = (
    "LIMIT -2 is no limit, as LIMIT -1 is (SQLite: any negative limit)")
EQUIVALENT["easy_oww.freesound.store.x__sample_join__mutmut_5"] = (
    "`c != 'XXidXX'` keeps id among the columns set on conflict: `id = excluded.id or id`, the "
    "same id either way (the conflict is on id)")
for _name in ("xǁFreesoundLibraryǁhistory__mutmut_33", "xǁFreesoundLibraryǁhistory__mutmut_36",
              "xǁFreesoundLibraryǁhistory__mutmut_37"):
    EQUIVALENT["easy_oww.freesound.store." + _name] = (
        "zip without strict: the query selects exactly the ten columns the ten keys name")
for _name in ("xǁFreesoundLibraryǁ_merge_attached__mutmut_111",
              "xǁFreesoundLibraryǁ_merge_attached__mutmut_112",
              "xǁFreesoundLibraryǁbulk_add__mutmut_93", "xǁFreesoundLibraryǁbulk_add__mutmut_94"):
    EQUIVALENT["easy_oww.freesound.store." + _name] = (
        "the stand-in rank of an unranked link (2 << 30, 1 << 31): any value above every real "
        "rank orders the candidates alike")
EQUIVALENT["easy_oww.freesound.store.xǁFreesoundLibraryǁstart_run__mutmut_15"] = (
    "`lastrowid or 1`: an INSERT into a rowid table that succeeded has a lastrowid of 1 or more")
EQUIVALENT["easy_oww.freesound.store.x__sqlite_header_problem__mutmut_11"] = (
    "read(None) reads the whole file, of which only the first 100 bytes are looked at: the same "
    "verdict, only slower")
EQUIVALENT["easy_oww.freesound.store.x__sample_join__mutmut_6"] = (
    "`c != 'ID'` keeps id among the columns set on conflict: `id = excluded.id or id`, the "
    "same id either way (the conflict is on id)")
EQUIVALENT.update(dict.fromkeys(
    ("easy_oww.freesound.store." + name for name in _STORE_SQL_CASE),
    "SQL keywords, names and pragmas are case-insensitive; its quoted literals keep their case"))

# transfer/fetch.py (2026-11-26): mutants that change only the case of an HTTP header's
# name (a request's dict key, a response header read from urllib3's HTTPHeaderDict), and of
# the method (urllib3 upper-cases it).
_FETCH_HEADER_CASE = [
    "xǁFetcherǁ_learn__mutmut_17",
    "xǁFetcherǁ_learn__mutmut_18",
    "xǁFetcherǁ_learn__mutmut_26",
    "xǁFetcherǁ_learn__mutmut_27",
    "xǁFetcherǁ_learn__mutmut_37",
    "xǁFetcherǁ_learn__mutmut_38",
    "xǁFetcherǁ_learn__mutmut_6",
    "xǁFetcherǁ_learn__mutmut_7",
    "xǁFetcherǁ_note_rate_limit__mutmut_10",
    "xǁFetcherǁ_note_rate_limit__mutmut_23",
    "xǁFetcherǁ_note_rate_limit__mutmut_24",
    "xǁFetcherǁ_note_rate_limit__mutmut_5",
    "xǁFetcherǁ_note_rate_limit__mutmut_6",
    "xǁFetcherǁ_note_rate_limit__mutmut_9",
    "xǁFetcherǁ_open__mutmut_10",
    "xǁFetcherǁ_open__mutmut_14",
    "xǁFetcherǁ_open__mutmut_15",
    "xǁFetcherǁ_open__mutmut_49",
    "xǁFetcherǁ_open__mutmut_50",
    "xǁFetcherǁ_open__mutmut_53",
    "xǁFetcherǁ_open__mutmut_54",
    "xǁFetcherǁ_open__mutmut_61",
    "xǁFetcherǁ_open__mutmut_62",
    "xǁFetcherǁ_open__mutmut_72",
    "xǁFetcherǁ_open__mutmut_73",
    "xǁFetcherǁ_open__mutmut_9",
    "xǁFetcherǁ_piece_attempt__mutmut_20",
    "xǁFetcherǁ_piece_attempt__mutmut_21",
    "xǁFetcherǁ_piece_attempt__mutmut_25",
    "xǁFetcherǁ_piece_attempt__mutmut_26",
    "xǁFetcherǁ_piece_attempt__mutmut_33",
    "xǁFetcherǁ_piece_attempt__mutmut_34",
    "xǁFetcherǁ_segmented__mutmut_29",
    "xǁFetcherǁ_segmented__mutmut_30",
    "xǁFetcherǁ_segmented__mutmut_35",
    "xǁFetcherǁ_segmented__mutmut_36",
    "xǁFetcherǁ_single__mutmut_12",
    "xǁFetcherǁ_single__mutmut_13",
    "xǁFetcherǁ_single__mutmut_8",
    "xǁFetcherǁ_single__mutmut_9",
    "xǁFetcherǁ_single_attempt__mutmut_29",
    "xǁFetcherǁ_single_attempt__mutmut_30",
    "xǁFetcherǁ_single_attempt__mutmut_33",
    "xǁFetcherǁ_single_attempt__mutmut_34",
    "xǁFetcherǁ_single_attempt__mutmut_46",
    "xǁFetcherǁ_single_attempt__mutmut_47",
    "xǁFetcherǁ_single_attempt__mutmut_59",
    "xǁFetcherǁ_single_attempt__mutmut_60",
    "xǁFetcherǁinspect__mutmut_15",
    "xǁFetcherǁinspect__mutmut_16",
    "xǁFetcherǁinspect__mutmut_30",
    "xǁFetcherǁinspect__mutmut_31",
    "xǁFetcherǁinspect__mutmut_43",
    "xǁFetcherǁinspect__mutmut_44",
    "xǁFetcherǁinspect__mutmut_50",
    "xǁFetcherǁinspect__mutmut_51",
    "xǁFetcherǁinspect__mutmut_68",
    "xǁFetcherǁinspect__mutmut_69",
    "xǁFetcherǁprobe__mutmut_25",
    "xǁFetcherǁprobe__mutmut_26",
    "xǁFetcherǁprobe__mutmut_41",
    "xǁFetcherǁprobe__mutmut_42",
    "xǁFetcherǁprobe__mutmut_53",
    "xǁFetcherǁprobe__mutmut_54",
    "xǁFetcherǁprobe__mutmut_59",
    "xǁFetcherǁprobe__mutmut_60",
    "xǁFetcherǁprobe__mutmut_71",
    "xǁFetcherǁprobe__mutmut_72",
    "xǁFetcherǁprobe__mutmut_93",
    "xǁFetcherǁprobe__mutmut_94",
    "xǁFetcherǁprobe__mutmut_97",
]
_FETCH_METHOD_CASE = [
    "xǁFetcherǁ_piece_attempt__mutmut_9",
    "xǁFetcherǁ_single_attempt__mutmut_9",
    "xǁFetcherǁinspect__mutmut_13",
    "xǁFetcherǁprobe__mutmut_23",
    "xǁFetcherǁprobe__mutmut_9",
]
_FETCH_OTHER = {
    "x__let_go__mutmut_1": "speed only: the connection is closed instead of reused",
    "x__let_go__mutmut_5": "speed only: the connection is closed instead of reused",
    "x__let_go__mutmut_6": "speed only: the connection is closed instead of reused",
    "x__let_go__mutmut_7": "speed only: the connection is closed instead of reused",
    "x__let_go__mutmut_9": "speed only: the connection is closed instead of reused",
    "x__parse_content_range__mutmut_14":
        "one '-' in a Content-Range's span: partition and rpartition agree",
    "x__parse_content_range__mutmut_17": "the range's end (the tuple's second item) is never read",
    "x__parse_content_range__mutmut_19": "the range's end (the tuple's second item) is never read",
    "x__parse_content_range__mutmut_9":
        "one '/' in a Content-Range: partition and rpartition agree",
    "xǁFetcherǁ__init____mutmut_25": "speed only: the number of hosts whose connections are kept",
    "xǁFetcherǁ__init____mutmut_30": "speed only: connections kept per host",
    "xǁFetcherǁ__init____mutmut_32": "speed only: connections kept per host",
    "xǁFetcherǁ_check_linked_hash__mutmut_5": "'XXXX' is no sha256 either (not 64 long): no check",
    "xǁFetcherǁ_check_linked_hash__mutmut_6":
        "'X' is no hex digit: stripping it too changes no sha256",
    "xǁFetcherǁ_check_status__mutmut_12": "400 is in FATAL_STATUSES: fatal either way",
    "xǁFetcherǁ_check_status__mutmut_13": "400 is in FATAL_STATUSES: fatal either way",
    "xǁFetcherǁ_check_status__mutmut_14":
        "500 is a busy status, raised above: never reaches this test",
    "xǁFetcherǁ_check_status__mutmut_15":
        "500 is a busy status, raised above: never reaches this test",
    "xǁFetcherǁ_copy__mutmut_10":
        "speed only: a segment's reads are chunk // 4, not 64 KiB, at least",
    "xǁFetcherǁ_copy__mutmut_11": "speed only: the size of a segment's reads",
    "xǁFetcherǁ_copy__mutmut_12": "speed only: the size of a segment's reads",
    "xǁFetcherǁ_copy__mutmut_14": "speed only: the size of a segment's reads",
    "xǁFetcherǁ_copy__mutmut_29": "read1(0) returns b'' (urllib3): the loop ends on the next line",
    "xǁFetcherǁ_copy__mutmut_3": "speed only: the size of one connection's reads",
    "xǁFetcherǁ_copy__mutmut_31":
        "want <= 0 means pos >= the limit (a piece's end only moves down): the check passes",
    "xǁFetcherǁ_copy__mutmut_4": "speed only: the size of a segment's reads",
    "xǁFetcherǁ_copy__mutmut_5": "speed only: the size of the reads",
    "xǁFetcherǁ_discard__mutmut_11":
        "the part exists: _finish has just synced and sized it; nothing removes it before",
    "xǁFetcherǁ_discard__mutmut_12":
        "the part exists: _finish has just synced and sized it; nothing removes it before",
    "xǁFetcherǁ_fetch_locked__mutmut_13": "completed=0 is the default",
    "xǁFetcherǁ_fetch_locked__mutmut_30": "descriptor 0 is stdin, never the part",
    "xǁFetcherǁ_fetch_locked__mutmut_31": "descriptor 0 is stdin, never the part",
    "xǁFetcherǁ_fetch_locked__mutmut_5":
        "the stale file was just listed, under the lock: it exists",
    "xǁFetcherǁ_fetch_locked__mutmut_6":
        "the stale file was just listed, under the lock: it exists",
    "xǁFetcherǁ_finish__mutmut_16": "'' is as false as None for close_part's `if self.hasher`",
    "xǁFetcherǁ_finish__mutmut_19":
        "unreachable: hasher.finish has just read size bytes of the part, cut to size",
    "xǁFetcherǁ_finish__mutmut_2": "a weaker assert: size and hasher are set on every path here",
    "xǁFetcherǁ_finish__mutmut_8": "ftruncate to the size it already has changes nothing",
    "xǁFetcherǁ_learn__mutmut_39":
        "'XXXX' is no number either: a missing Content-Length reads as none",
    "xǁFetcherǁ_note_rate_limit__mutmut_30":
        "one '=' per parameter: partition and rpartition agree",
    "xǁFetcherǁ_note_rate_limit__mutmut_42": "'XXXX' is not '0' either: a missing r means no wait",
    "xǁFetcherǁ_note_rate_limit__mutmut_51":
        "'XXXX' is no number either: a missing t means no wait",
    "xǁFetcherǁ_note_rate_limit__mutmut_58":
        "a wait of 0 s ends at once: the next request finds it past",
    "xǁFetcherǁ_open__mutmut_2": "'' is as false as None where linked_size is read (`or`)",
    "xǁFetcherǁ_open__mutmut_24": "redirect=None is as false as False in urllib3",
    "xǁFetcherǁ_open__mutmut_25": "preload_content=None is as false as False in urllib3",
    "xǁFetcherǁ_open__mutmut_26": "decode_content=None is as false as False in urllib3",
    "xǁFetcherǁ_open__mutmut_63":
        "'XXXX' is no number either: a missing X-Linked-Size reads as none",
    "xǁFetcherǁ_open__mutmut_8":
        "http.client then sends Accept-Encoding: identity itself; the odd header is ignored",
    "xǁFetcherǁ_run__mutmut_103": "_probe has just checked the server's size against the catalog's",
    "xǁFetcherǁ_run__mutmut_98": "None is as false as False",
    "xǁFetcherǁ_segmented__mutmut_26":
        "a piece is tried only with bytes left (_copy raises before its end; a steal leaves half)",
    "xǁFetcherǁ_segmented__mutmut_67":
        "speed only: the saver is woken on every write (a quick save at most every 0.05 s)",
    "xǁFetcherǁ_segmented__mutmut_71": "the worker threads' names only",
    "xǁFetcherǁ_segmented__mutmut_75": "the worker threads' names only",
    "xǁFetcherǁ_segmented__mutmut_76": "the worker threads' names only",
    "xǁFetcherǁ_segmented__mutmut_77":
        "speed only: after Ctrl-C it waits for a segment stuck in a read until the read ends",
    "xǁFetcherǁ_segmented__mutmut_78": "speed only: after Ctrl-C, 6 s for the segments, not 5",
    "xǁFetcherǁ_wait_for_rate_limit__mutmut_13":
        "time.monotonic() is far over 1 s: 1.0 minus it is as negative as 0.0 minus it",
    "xǁFetcherǁ_wait_for_rate_limit__mutmut_14": "a wait of exactly 0 s returns at once either way",
    "xǁFetcherǁfetch__mutmut_6":
        "the request handed to _fetch_from is never asked for its fallbacks",
    "xǁFetcherǁfetch__mutmut_9":
        "the request handed to _fetch_from is never asked for its fallbacks",
    "xǁFetcherǁinspect__mutmut_52":
        "'XXXX' is no number either: a missing Content-Length reads as none",
    "xǁFetcherǁprobe__mutmut_55":
        "'XXXX' is no number either: a missing Content-Length reads as none",
    "xǁFetcherǁprobe__mutmut_73":
        "'xxxx' is not 'none' either: a missing Accept-Ranges allows ranges",
    "xǁFetcherǁprobe__mutmut_98": "HTTP header names are case-insensitive (RFC 9110 §5.1)",
    "xǁ_Downloadǁ__init____mutmut_16": "_run sets done (from the resume plan) before any use",
    "xǁ_Downloadǁ__init____mutmut_17": "_run sets the size before any use",
    "xǁ_Downloadǁ__init____mutmut_18": "_run sets the validator before any use",
    "xǁ_Downloadǁ__init____mutmut_19": "_run sets sequential before any use",
    "xǁ_Downloadǁ__init____mutmut_20": "_run sets sequential before any use",
    "xǁ_Downloadǁ__init____mutmut_23": "'' is as false as None for close_part's `if self.hasher`",
    "xǁ_Downloadǁ__init____mutmut_26": "-2 is as closed as -1 where fd is read (fd >= 0)",
    "xǁ_Downloadǁ__init____mutmut_33": "open_part's first save sets unsaved to 0 before any write",
    "xǁ_Downloadǁ__init____mutmut_34": "open_part's first save sets unsaved to 0 before any write",
    "xǁ_Downloadǁ__init____mutmut_35": "_run sets durable (from the resume plan) before any use",
    "xǁ_Downloadǁ_save_loop__mutmut_11": "speed only: every save is a durable one (synced)",
    "xǁ_Downloadǁ_save_loop__mutmut_12": "speed only: a durable save at > interval, not >=",
    "xǁ_Downloadǁ_save_loop__mutmut_4":
        "speed only: saves then come with each save_every bytes, not also every 0.1 s",
    "xǁ_Downloadǁ_save_loop__mutmut_9": "speed only: the saver looks every 1.1 s, not 0.1 s",
    "xǁ_Downloadǁclose_part__mutmut_1": "'' is as false as None, and a new hasher comes before use",
    "xǁ_Downloadǁclose_part__mutmut_2": "descriptor 0 is stdin, never the part",
    "xǁ_Downloadǁclose_part__mutmut_3": "descriptor 0 is stdin, never the part",
    "xǁ_Downloadǁclose_part__mutmut_7": "-2 is as closed as -1 where fd is read (fd >= 0)",
    "xǁ_Downloadǁopen_part__mutmut_15": "ftruncate to the size it already has changes nothing",
    "xǁ_Downloadǁopen_part__mutmut_32": "the saver thread's name only",
    "xǁ_Downloadǁopen_part__mutmut_33":
        "the saver is always stopped and joined (close_part, in a finally): daemon or not",
    "xǁ_Downloadǁopen_part__mutmut_36":
        "the saver is always stopped and joined (close_part, in a finally): daemon or not",
    "xǁ_Downloadǁopen_part__mutmut_37": "the saver thread's name only",
    "xǁ_Downloadǁopen_part__mutmut_38": "the saver thread's name only",
    "xǁ_Downloadǁopen_part__mutmut_39":
        "the saver is always stopped and joined (close_part, in a finally): daemon or not",
    "xǁ_Downloadǁsave_sidecar__mutmut_3": "speed only: the saver is woken one byte sooner",
    "xǁ_Downloadǁsave_sidecar__mutmut_6": "descriptor 0 is stdin, never the part",
    "xǁ_Downloadǁsave_sidecar__mutmut_7": "descriptor 0 is stdin, never the part",
    "xǁ_Downloadǁwrote__mutmut_10":
        "speed only: the saver wakes by itself every 0.1 s; this wakes it sooner or not",
    "xǁ_Downloadǁwrote__mutmut_12":
        "speed only: the saver wakes by itself every 0.1 s; this wakes it sooner or not",
    "xǁ_Downloadǁwrote__mutmut_13":
        "speed only: the saver wakes by itself every 0.1 s; this wakes it sooner or not",
    "xǁ_Downloadǁwrote__mutmut_14":
        "speed only: the saver wakes by itself every 0.1 s; this wakes it sooner or not",
    "xǁ_Downloadǁwrote__mutmut_15":
        "speed only: the saver wakes by itself every 0.1 s; this wakes it sooner or not",
    "xǁ_Downloadǁwrote__mutmut_16":
        "speed only: the saver wakes by itself every 0.1 s; this wakes it sooner or not",
    "xǁ_Downloadǁwrote__mutmut_17":
        "speed only: the saver wakes by itself every 0.1 s; this wakes it sooner or not",
    "xǁ_Downloadǁwrote__mutmut_18":
        "speed only: the saver wakes by itself every 0.1 s; this wakes it sooner or not",
    "xǁ_Downloadǁwrote__mutmut_9":
        "speed only: the saver wakes by itself every 0.1 s; this wakes it sooner or not",
    "xǁ_LinkedEventǁwait__mutmut_16":
        "speed only: a cancel from outside is seen within 1.1 s, not 0.1 s, while waiting",
    "xǁ_LinkedEventǁwait__mutmut_4": "speed only: a wait of 0 s (Retry-After: 0) lasts up to 1 s",
    "xǁ_LinkedEventǁwait__mutmut_8": "speed only: one more wait of 0 s at the deadline",
    "xǁ_OrderedHasherǁ__init____mutmut_11": "'' is as false as None where _error is read",
    "xǁ_OrderedHasherǁ__init____mutmut_16": "the thread's name only",
    "xǁ_OrderedHasherǁ__init____mutmut_17":
        "the hasher thread is always joined (finish, or abandon in close_part's finally)",
    "xǁ_OrderedHasherǁ__init____mutmut_19": "the thread's name only",
    "xǁ_OrderedHasherǁ__init____mutmut_20":
        "the hasher thread is always joined (finish, or abandon in close_part's finally)",
    "xǁ_OrderedHasherǁ__init____mutmut_21": "the thread's name only",
    "xǁ_OrderedHasherǁ__init____mutmut_22": "the thread's name only",
    "xǁ_OrderedHasherǁ__init____mutmut_23":
        "the hasher thread is always joined (finish, or abandon in close_part's finally)",
    "xǁ_OrderedHasherǁ__init____mutmut_8":
        "speed only: _queued one byte high makes the feeder wait one byte sooner",
    "xǁ_OrderedHasherǁ__init____mutmut_9": "None is as false as False",
    "xǁ_OrderedHasherǁ_next__mutmut_17":
        "the fed bytes are read back from the part instead (written before handed over)",
    "xǁ_OrderedHasherǁ_next__mutmut_3":
        "a fed chunk then counts as covered and is read back: the same bytes, written before",
    "xǁ_OrderedHasherǁ_next__mutmut_6":
        "a fed chunk never lies behind the hashed front: feeds start where read-backs stop",
    "xǁ_OrderedHasherǁ_next__mutmut_7":
        "a fed chunk never lies behind the hashed front: feeds start where read-backs stop",
    "xǁ_OrderedHasherǁ_next__mutmut_8":
        "a fed chunk never lies behind the hashed front: feeds start where read-backs stop",
    "xǁ_OrderedHasherǁ_run__mutmut_10": "preadv reads through the descriptor: buffering is unused",
    "xǁ_OrderedHasherǁ_run__mutmut_13": "preadv reads through the descriptor: buffering is unused",
    "xǁ_OrderedHasherǁabandon__mutmut_3":
        "the abandoned thread ends either way (on a TypeError kept in _error, never read)",
    "xǁ_OrderedHasherǁabandon__mutmut_4":
        "after abandon nothing feeds (its one feeder abandons it): _queued is not read again",
    "xǁ_OrderedHasherǁabandon__mutmut_5":
        "after abandon nothing feeds (its one feeder abandons it): _queued is not read again",
    "xǁ_OrderedHasherǁadvance_to__mutmut_1":
        "one more notify with nothing new: the hasher finds nothing to do",
    "xǁ_OrderedHasherǁfeed__mutmut_12":
        "fed chunks carry their offsets and finish() advances _ready to the size",
}
_FETCH_HEADER_CASE += [f"xǁFetcherǁ_confirm_end__mutmut_{n}" for n in (4, 5, 8, 9, 35, 36, 44, 45)]
_FETCH_METHOD_CASE += ["xǁFetcherǁ_confirm_end__mutmut_22"]
_FETCH_OTHER.update({
    "xǁFetcherǁ_confirm_end__mutmut_41": "only the restart's reason (a log line) loses its range",
    "xǁFetcherǁ_confirm_end__mutmut_42": "only the restart's reason (a log line) loses its range",
    "xǁFetcherǁ_confirm_end__mutmut_43": "only the restart's reason (a log line) loses its range",
    "xǁFetcherǁ_single__mutmut_31":
        "the end confirmed when a hash is known too: one request more, the same bytes",
})
EQUIVALENT.update(dict.fromkeys(
    ("easy_oww.transfer.fetch." + name for name in _FETCH_HEADER_CASE),
    "HTTP header names are case-insensitive (RFC 9110 §5.1): urllib3 and servers compare so"))
EQUIVALENT.update(dict.fromkeys(
    ("easy_oww.transfer.fetch." + name for name in _FETCH_METHOD_CASE),
    "urllib3 upper-cases the method (RequestMethods.request): the same request is sent"))
EQUIVALENT.update({"easy_oww.transfer.fetch." + name: why for name, why in _FETCH_OTHER.items()})
# end of transfer/fetch.py

# Statements that only word a message (an exception's text, a log line) are not mutated: their
# wording is the README's and the CLI error tests' business, and a mutant that changes a word of
# one is not a mistake that loses data. The condition that raises is on its own line and is
# mutated as any other.
MESSAGE_LINES = [r"^\s*raise \w+\(", r"^\s*self\.(progress\.)?log\(", r"^\s*log\("]


def mangled_module(path: str) -> str:
    return "easy_oww." + path[:-3].replace("/", ".")


def scratch_copy(module: Module, work: Path, fresh: bool) -> Path:
    """src, tests, bench and pyproject.toml in `work`, with [tool.mutmut] narrowed to `module`.
    Unless `fresh`, an earlier run's mutants/ stays: mutmut keeps the verdicts of functions
    whose source did not change (copies keep their mtimes) and tests only the rest."""
    if fresh and work.exists():
        shutil.rmtree(work)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis", "mutants")
    # bench/ (and mutmut's also_copy below): test_map.py builds its large library with
    # bench.b11_map's generator
    for part in ("src", "tests", "bench"):
        if (work / part).exists():
            shutil.rmtree(work / part)
        shutil.copytree(REPO / part, work / part, ignore=ignore)
    text = (REPO / "pyproject.toml").read_text()
    text = re.sub(r"(?ms)^\[tool\.mutmut\].*?(?=^\[|\Z)", "", text)
    if module.test_timeout is not None:
        text = re.sub(r"(?m)^timeout = \d+$", f"timeout = {module.test_timeout}", text)
    text += "\n[tool.mutmut]\n" + "\n".join([
        'source_paths = ["src"]',
        'also_copy = ["bench"]',
        f'only_mutate = ["src/easy_oww/{module.path}"]',
        f"pytest_add_cli_args_test_selection = {json.dumps(list(module.tests))}",
        'pytest_add_cli_args = ["-p", "no:cacheprovider"]',
        f"do_not_mutate_patterns = {json.dumps(MESSAGE_LINES)}",
        "use_git_change_detection = false",
        "timeout_multiplier = 5.0",
        f"timeout_constant = {module.timeout_constant}",
    ]) + "\n"
    (work / "pyproject.toml").write_text(text)
    return work


def others_running(pattern: str | None) -> bool:
    if not pattern:
        return False
    found = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True)
    return bool({int(pid) for pid in found.stdout.split()} - _ancestors())


def _ancestors() -> set[int]:
    """This process and those that started it (whose command lines name the pattern too)."""
    pids, pid = set(), os.getpid()
    while pid > 1:
        pids.add(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        pid = int(stat.rpartition(")")[2].split()[1])
    return pids


# A mutant that makes a loop endless while it appends (segments.split's `start = target`) grew
# to 9 GB in under a minute on the shared two-core machine. Under this cap it fails with
# MemoryError, which fails its test (a kill, seen at once) instead of ending as a timeout,
# and no one else's work is starved of memory on the way.
MEMORY_LIMIT = 3 * 1024**3


def limit_memory() -> None:
    """In the child before exec: cap its heap (and its children's) at MEMORY_LIMIT."""
    resource.setrlimit(resource.RLIMIT_DATA, (MEMORY_LIMIT, MEMORY_LIMIT))


def run_mutmut(work: Path, budget: int, children: int, yield_to: str | None = None) -> bool:
    """`mutmut run` in `work`; False when the budget ran out or a process matching `yield_to`
    started (the results so far stand: run again to go on)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    mutmut = Path(sys.executable).with_name("mutmut")
    with open(work / "mutmut.log", "w") as log:
        process = subprocess.Popen([str(mutmut), "run", "--max-children", str(children)],
                                   cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True, preexec_fn=limit_memory)
        deadline = time.monotonic() + budget
        while process.poll() is None:
            if others_running(yield_to):
                print(f"a process matching {yield_to!r} started: stopping", file=sys.stderr)
            elif time.monotonic() < deadline:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=2.0)
                continue
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            return False
    if process.returncode != 0:
        tail = (work / "mutmut.log").read_text(errors="replace")[-2000:]
        print(f"mutmut exited {process.returncode} in {work}:\n{tail}", file=sys.stderr)
    return True


def describe(work: Path, names: list[str]) -> None:
    """Each survivor's diff (`mutmut show`) into survivors.txt beside the results."""
    mutmut = Path(sys.executable).with_name("mutmut")
    with open(work / "survivors.txt", "w") as out:
        for name in names:
            shown = subprocess.run([str(mutmut), "show", name], cwd=work, capture_output=True,
                                   text=True, timeout=60)
            out.write(f"## {name}\n{shown.stdout}\n")


def forget_survivors(work: Path, module: Module) -> None:
    """Clear the verdicts of surviving, untested, timed-out and interrupted mutants (a stopped
    run leaves "suspicious" ones) so the next run tests them again
    (mutmut maps new tests to functions, but keeps a survivor's verdict once given).
    Survivors listed in EQUIVALENT keep theirs: they cannot be killed, and each would cost
    every test mapped to it again."""
    meta = work / "mutants" / "src" / "easy_oww" / (module.path + ".meta")
    if not meta.exists():
        return
    data = json.loads(meta.read_text())
    codes = data["exit_code_by_key"]
    for name, code in codes.items():
        status = STATUS.get(code, "suspicious")
        if status == "survived" and name in EQUIVALENT:
            continue
        if status in ("survived", "no tests", "timeout", "suspicious", "interrupted"):
            codes[name] = None
    meta.write_text(json.dumps(data))


def skip_equivalent(work: Path, module: Module) -> None:
    """Mark the untested mutants listed in EQUIVALENT as skipped before mutmut runs: their
    verdict is never counted, and each one survives, which costs every test mapped to its
    function (the store's 340 SQL-case mutants took most of its budget). Needs the mutants
    generated by an earlier run: on a first or --fresh run they are tested as any other."""
    meta = work / "mutants" / "src" / "easy_oww" / (module.path + ".meta")
    if not meta.exists():
        return
    data = json.loads(meta.read_text())
    codes = data["exit_code_by_key"]
    for name in codes:
        if name in EQUIVALENT and codes[name] is None:
            codes[name] = SKIPPED
        elif name not in EQUIVALENT and codes[name] == SKIPPED:
            codes[name] = None  # no longer listed (renumbered after an edit): test it
    meta.write_text(json.dumps(data))


# mutmut's exit codes per mutant (mutmut/stats.py: status_by_exit_code), restated so reading
# the results does not import mutmut's CLI (which reads the config of the current folder).
SKIPPED = 34
STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests",
          2: "interrupted", None: "not checked", 34: "skipped", 35: "suspicious",
          36: "timeout", -24: "timeout", 24: "timeout", 152: "timeout", 255: "timeout",
          37: "caught by type check", -11: "segfault", -9: "segfault"}


def read_results(work: Path, module: Module) -> dict[str, str]:
    """mutant name -> status, from mutmut's .meta file."""
    meta = work / "mutants" / "src" / "easy_oww" / (module.path + ".meta")
    if not meta.exists():
        return {}
    data = json.loads(meta.read_text())
    return {name: STATUS.get(code, "suspicious")
            for name, code in data["exit_code_by_key"].items()}


def run_in_subprocess_tests(work: Path, module: Module, names: list[str],
                            budget: int) -> dict[str, str]:
    """Each "no tests" mutant against the module's subprocess tests: exit 0 survived."""
    found: dict[str, str] = {}
    deadline = time.monotonic() + budget
    mutants = work / "mutants"
    for name in names:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env.update(MUTANT_UNDER_TEST=name, PYTHONPATH=str(mutants / "src"))
        try:
            done = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p",
                                   "no:cacheprovider", *module.subprocess_tests], cwd=mutants,
                                  env=env, capture_output=True, timeout=min(left, 600),
                                  preexec_fn=limit_memory)
            found[name] = "survived" if done.returncode == 0 else "killed"
        except subprocess.TimeoutExpired:
            found[name] = "timeout"
    return found


@dataclass
class Score:
    module: str
    counts: Counter = field(default_factory=Counter)
    equivalent: list[str] = field(default_factory=list)
    survivors: list[str] = field(default_factory=list)
    finished: bool = True

    @property
    def score(self) -> float | None:
        c = self.counts
        live = c["killed"] + c["survived"] + c["timeout"] + c["no tests"] + c["suspicious"]
        return c["killed"] / live if live else None

    def row(self) -> str:
        c = self.counts
        pct = f"{self.score:.1%}" if self.score is not None else "-"
        note = "" if self.finished else " (budget ran out: partial)"
        return (f"| {self.module} | {c['killed']} | {c['survived']} | {len(self.equivalent)} | "
                f"{c['no tests']} | {c['timeout']} | {c['not checked']} | {pct}{note} |")


def score_module(module: Module, work_root: Path, children: int, sub_budget: int, *,
                 fresh: bool = False, budget: int | None = None,
                 yield_to: str | None = None, retest: bool = False) -> Score:
    work = scratch_copy(module, work_root / module.path.replace("/", "_")[:-3], fresh)
    if retest:
        forget_survivors(work, module)
    skip_equivalent(work, module)
    finished = run_mutmut(work, budget or module.budget, children, yield_to)
    results = read_results(work, module)
    no_tests = [n for n, s in results.items() if s == "no tests"]
    if no_tests and module.subprocess_tests and sub_budget > 0:
        results.update(run_in_subprocess_tests(work, module, no_tests, sub_budget))
    score = Score(mangled_module(module.path), finished=finished)
    for name, status in results.items():
        if name in EQUIVALENT:
            score.equivalent.append(name)
            continue
        score.counts[status] += 1
        if status == "survived":
            score.survivors.append(name)
    describe(work, score.survivors)
    (work / "score.json").write_text(json.dumps({
        "module": module.path, "date": dt.date.today().isoformat(), "counts": score.counts,
        "equivalent": score.equivalent, "survivors": score.survivors,
        "finished": finished}, indent=1))
    return score


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help="paths under src/easy_oww (default: all)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/easy-oww-mutation"),
                        help="where the scratch copies go (default: %(default)s)")
    parser.add_argument("--children", type=int, default=max(1, (os.cpu_count() or 2) - 1),
                        help="mutants tested at once (default: cores - 1)")
    parser.add_argument("--subprocess-budget", type=int, default=0,
                        help="seconds per module for running 'no tests' mutants against its "
                             "subprocess tests (default 0: report them as 'no tests')")
    parser.add_argument("--budget", type=int, help="seconds per module, instead of its own")
    parser.add_argument("--fresh", action="store_true",
                        help="drop an earlier run's results (default: go on from them)")
    parser.add_argument("--retest", action="store_true",
                        help="test the last run's survivors, untested and timed-out mutants "
                             "again (after adding tests for them)")
    parser.add_argument("--yield-to", metavar="PATTERN",
                        help="stop (keeping the results so far) when a process whose command "
                             "line matches PATTERN runs, e.g. a benchmark on a shared machine")
    parser.add_argument("--list", action="store_true", help="list the modules and stop")
    args = parser.parse_args(argv)
    chosen = args.modules or list(MODULES)
    unknown = [m for m in chosen if m not in MODULES]
    if unknown:
        parser.error(f"unknown module {unknown[0]!r}; choose from: {', '.join(MODULES)}")
    if args.list:
        for m in (MODULES[c] for c in chosen):
            print(f"{m.path}: {m.budget} s; tests {' '.join(m.tests)}"
                  + (f"; via subprocess {' '.join(m.subprocess_tests)}"
                     if m.subprocess_tests else ""))
        return 0
    stale = [name for name in EQUIVALENT if not any(
        name.startswith(mangled_module(m) + ".") for m in MODULES)]
    for name in stale:
        print(f"EQUIVALENT names no module in MODULES: {name}", file=sys.stderr)
    print(f"Mutation scores, {dt.date.today().isoformat()} (mutmut, scripts/mutation.py)\n")
    print("| module | killed | survived | equivalent | no tests | timeout | not run | score |")
    print("|---|---|---|---|---|---|---|---|")
    scores = []
    for path in chosen:
        if others_running(args.yield_to):
            print(f"a process matching {args.yield_to!r} runs: not starting {path}",
                  file=sys.stderr)
            break
        score = score_module(MODULES[path], args.work, args.children, args.subprocess_budget,
                             fresh=args.fresh, budget=args.budget, yield_to=args.yield_to,
                             retest=args.retest)
        scores.append(score)
        print(score.row(), flush=True)
    for score in scores:
        if score.survivors:
            print(f"\nSurvivors in {score.module} (`mutmut show <name>` in "
                  f"{args.work}/<module>):")
            for name in score.survivors:
                print(f"- {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
