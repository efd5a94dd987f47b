"""The guided tour `easy-oww demo` prints: the real commands, run one after another as child
processes against the demo's loopback servers, each introduced by a step line and followed by
what it showed and where its files are.

The commands run as ``python -m easy_oww`` in a session of their own (`start_new_session`):
what they print is exactly what the same command prints for a user (bars on a terminal,
plain lines in a pipe), and a Ctrl-C at the terminal reaches the demo alone, which then ends
the running command itself (so the one line said is the demo's).
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from easy_oww.demo.data import FEATURES_PATH, OriginFile, catalog_text, make_origin
from easy_oww.demo.freesound_standin import FreesoundStandin
from easy_oww.demo.origin import DemoOrigin
from easy_oww.errors import BadInputError, EasyOwwError
from easy_oww.progress import human_bytes

MARKER = ".easy-oww-demo"  # in a workspace the demo made: it may run there again
DEMO_KEY = "demo-key-for-the-local-stand-in-only"
RATE = 4_000_000  # bytes a second per answer: a 12 MB file takes about 3 s to watch
HOLD_AT = 0.45  # the first download is interrupted after this share of the features file
GROW_SAMPLES = 40
DOWNLOAD = ("download", "--all", "--sample-rate", "16000")
STANDIN_SOUNDS = 500
# Children must not pick up the user's mirrors, key, API address or workspace.
_CLEARED_ENV = ("EASY_OWW_MIRROR", "FREESOUND_API_KEY", "FREESOUND_API_URL",
                "EASY_OWW_WORKSPACE", "EASY_OWW_CONFIG_DIR")

STEPS = (
    "make small datasets with the real shapes",
    "start the local servers",
    "download, interrupted part-way",
    "the same command again: it resumes",
    "verify",
    "download --status",
    "freesound grow",
    "freesound audio",
    "freesound visualize",
    "freesound background",
    "oww-config",
)


class DemoWorkspaceError(BadInputError):
    """--workspace names a folder that holds something else (exit 2)."""


class DemoStepError(EasyOwwError):
    """A command of the tour failed (exit 1); its own output said why."""


# What a demo run makes in its workspace: a run in an earlier one's removes these first (and
# nothing else there), so it starts over; the library's preview URLs name the old servers.
DEMO_ENTRIES = (".demo", ".cache", "datasets", "freesound_library", "datasets.toml",
                "freesound_map.html", "my_model.yml")


def prepare_workspace(chosen: Path | None) -> tuple[Path, bool, bool]:
    """The workspace (made if new), whether it is a temporary one, and whether an earlier
    demo run's files were removed from it. A chosen folder must be new, empty or an earlier
    demo's: the demo writes its own datasets.toml there."""
    again = False
    if chosen is None:
        root = Path(tempfile.mkdtemp(prefix="easy-oww-demo-"))
    else:
        root = chosen.expanduser().absolute()
        if root.exists() and not root.is_dir():
            raise DemoWorkspaceError(f"--workspace {root} is a file; give a new folder")
        if root.is_dir() and any(root.iterdir()) and not (root / MARKER).exists():
            raise DemoWorkspaceError(
                f"--workspace {root} is not empty and not a demo's workspace; the demo writes "
                "its own datasets.toml there: give a new or empty folder")
        root.mkdir(parents=True, exist_ok=True)
        for name in DEMO_ENTRIES if (root / MARKER).exists() else ():
            entry = root / name
            again = again or entry.exists()
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink(missing_ok=True)
    (root / MARKER).write_text("made by `easy-oww demo`; safe to delete\n", encoding="utf-8")
    return root, chosen is None, again


@contextmanager
def _signals_held() -> Iterator[None]:
    """Ctrl-C and SIGTERM wait until the block is over: a KeyboardInterrupt inside Popen,
    after the fork, would lose the child, which then runs on unseen (and unkilled)."""
    caught: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, frame: caught.append(signum))
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for sig in caught[:1]:
            handler = previous[sig]
            if callable(handler):
                handler(sig, None)  # raises KeyboardInterrupt, or the CLI's Terminated


@dataclass
class Tour:
    root: Path
    say: Callable[[str], None]
    flags: tuple[str, ...] = ()  # --verbose / --quiet, added to every command
    child: subprocess.Popen[bytes] | None = None
    origin: DemoOrigin | None = None
    standin: FreesoundStandin | None = None
    files: list[OriginFile] = field(default_factory=list)
    step_number: int = 0

    @property
    def datasets(self) -> Path:
        return self.root / "datasets"

    @property
    def hidden(self) -> Path:
        return self.root / ".demo"  # what only the demo needs: the origin, the key, state

    @property
    def key_file(self) -> Path:
        return self.hidden / "freesound-key.txt"

    @property
    def map_file(self) -> Path:
        return self.root / "freesound_map.html"

    @property
    def config_file(self) -> Path:
        return self.root / "my_model.yml"

    # -- running commands ------------------------------------------------------------------
    def step(self, explanation: str) -> None:
        self.step_number += 1
        title = STEPS[self.step_number - 1]
        self.say(f"\n== Step {self.step_number} of {len(STEPS)}: {title} ==")
        self.say(explanation)

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        args = (*args, *self.flags)
        self.say("$ easy-oww " + shlex.join(args))
        env = {k: v for k, v in os.environ.items() if k not in _CLEARED_ENV}
        env.update(EASY_OWW_WORKSPACE=str(self.root),
                   EASY_OWW_CONFIG_DIR=str(self.hidden / "config"))
        with _signals_held():
            self.child = subprocess.Popen([sys.executable, "-m", "easy_oww", *args], env=env,
                                          start_new_session=True)
        return self.child

    def run(self, *args: str, allowed: tuple[int, ...] = (0,)) -> int:
        child = self.start(*args)
        code = child.wait()
        self.child = None
        if code not in allowed:
            raise DemoStepError(f"`easy-oww {shlex.join(args)}` exited {code} (its output is "
                                "above); the demo stops here")
        return code

    def stop_child(self) -> None:
        """End the running command at once (Ctrl-C or SIGTERM reached the demo). A kill, not
        a Ctrl-C: the child's own "Interrupted" would be a second line, and a kill is what
        easy-oww is built to survive (resume records; one SQLite commit per sample)."""
        child, self.child = self.child, None
        if child is not None and child.poll() is None:
            child.kill()
            child.wait()

    # -- the steps -------------------------------------------------------------------------
    def make_data(self) -> None:
        self.step("Generated here, seeded, so every run makes the same bytes: openWakeWord "
                  "features (.npy, float16, shape (N, 16, 96)), room impulse responses "
                  "(16 kHz mono WAV) and 44.1 kHz clips in split zips named like FSD50K's "
                  "(.z01 + .zip).")
        self.files = make_origin(self.hidden / "origin")
        for f in self.files:
            self.say(f"  {human_bytes(f.size):>9}  {f.path}")
        total = sum(f.size for f in self.files)
        self.say(f"{len(self.files)} files, {human_bytes(total)}, in {self.hidden / 'origin'}")

    def start_servers(self, origin: DemoOrigin, standin: FreesoundStandin) -> None:
        self.step("Two servers on this machine, nothing from the internet: one serves the "
                  "files above like a download site (paced to "
                  f"{human_bytes(RATE)}/s a file so the progress can be seen), the other "
                  "answers like Freesound's API over a generated library of "
                  f"{STANDIN_SOUNDS} sounds.")
        self.origin, self.standin = origin, standin
        catalog = self.root / "datasets.toml"
        catalog.write_text(catalog_text(self.files, origin.base_url), encoding="utf-8")
        self.hidden.mkdir(parents=True, exist_ok=True)
        self.key_file.write_text(DEMO_KEY + "\n", encoding="utf-8")
        self.say(f"Datasets:  {origin.base_url}/")
        self.say(f"Freesound: {standin.base_url} (its key is in {self.key_file}; it opens "
                 "this stand-in only)")
        self.say(f"Catalog:   {catalog} (the workspace's own, read by every command: the "
                 "real dataset keys, these URLs, sizes and sha256; include_builtin = false)")
        self.say(f"Every command below runs with EASY_OWW_WORKSPACE={self.root}")

    def download_interrupted(self) -> int:
        """The first download, stopped part-way: the bytes of the features file sent by
        then."""
        assert self.origin is not None
        features = next(f for f in self.files if f.path == FEATURES_PATH)
        self.step("Every dataset of the catalog (--all), FSD50K's clips resampled to 16 kHz "
                  "on the way out. The demo presses Ctrl-C while the features file is part-way.")
        self.origin.hold_once(FEATURES_PATH, int(features.size * HOLD_AT))
        child = self.start(*DOWNLOAD)
        while not self.origin.reached.wait(0.05):
            if child.poll() is not None:
                break
        if child.poll() is None:
            child.send_signal(signal.SIGINT)
        code = child.wait()
        self.child = None
        self.origin.release()
        sent = self.origin.sent[FEATURES_PATH]
        part = self.datasets / (FEATURES_PATH + ".part")
        if code != 130:
            raise DemoStepError(f"`easy-oww download` exited {code} (its output is above); "
                                "the demo stops here")
        self.say(f"Interrupted at {human_bytes(sent)} of {human_bytes(features.size)} (exit "
                 "130, as for your Ctrl-C). Kept for the resume:")
        for path in (part, part.with_name(part.name + ".json")):
            if path.exists():
                self.say(f"  {path}")
        return sent

    def download_resumed(self, sent_before: int) -> None:
        assert self.origin is not None
        self.step(f"Interrupted at {human_bytes(sent_before)}; resuming: the same command "
                  "picks up from the bytes on disk and checks every file's sha256 before "
                  "calling it done.")
        asked_before = len(self.origin.starts)
        self.run(*DOWNLOAD)
        resumed = [start for path, start in self.origin.starts[asked_before:]
                   if path == FEATURES_PATH]
        if resumed:
            again = self.origin.sent[FEATURES_PATH] - sent_before
            self.say(f"The features file was asked for from byte {resumed[0]:,} on (an HTTP "
                     f"Range): {human_bytes(again)} more came from the server, not the whole "
                     "file again.")
        self.say(f"Files: {self.datasets} (acav100m/*.npy, mit_rir/*.wav, fsd50k/dev and "
                 "fsd50k/eval: the clips out of the split zips at 16 kHz; the volumes are "
                 "deleted once every clip is out and checked). The manifest: "
                 f"{self.root / '.cache' / 'manifest.json'}")

    def verify(self) -> None:
        self.step("Re-hash every downloaded file against the manifest; exit 1 if one changed.")
        self.run("verify")

    def status(self) -> None:
        self.step("What is on disk, without fetching anything: cached, partial, missing, "
                  "corrupt or stale. freesound_background is made here: step 10.")
        self.run("download", "--status")

    def grow(self) -> None:
        assert self.standin is not None
        self.step(f"{GROW_SAMPLES} samples from the (stand-in) Freesound API into the library: "
                  "a search for seeds, then similar sounds; each sample is committed with its "
                  "links, so a kill loses nothing.")
        self.run("freesound", "grow", "--samples", str(GROW_SAMPLES), "--api-url",
                 self.standin.base_url, "--api-key-file", str(self.key_file))
        self.say(f"The library: {self.root / 'freesound_library'} (one SQLite file, and its "
                 "backups as it grows)")

    def audio(self) -> None:
        self.step("The samples' previews, decoded and resampled to 16 kHz mono WAV.")
        self.run("freesound", "audio", "--sample-rate", "16000")
        self.say(f"The WAVs: {self.root / 'freesound_library' / 'audio'}")

    def visualize(self) -> None:
        self.step("The library as a map (one page, WebGL): sounds as dots, similar sounds "
                  "linked. Open it in a browser; the demo does not.")
        self.run("freesound", "visualize", str(self.map_file))

    def background(self) -> None:
        self.step("The library's audio as the dataset freesound_background: 16 kHz WAVs in "
                  "one folder, with ATTRIBUTION.csv, for openWakeWord's background mixing.")
        self.run("freesound", "background")

    def oww_config(self) -> None:
        self.step("The paths openWakeWord's train.py reads, from what is cached, each "
                  "checked the way train.py will read it.")
        self.run("oww-config", "--output", str(self.config_file))
        self.say(f"{self.config_file}:")
        for line in self.config_file.read_text(encoding="utf-8").splitlines():
            self.say("  " + line)

    def summary(self, temporary: bool, keep: bool) -> None:
        root = self.root
        self.say("\n== Done: where everything is ==")
        rows = (
            ("features", self.datasets / FEATURES_PATH),
            ("validation", self.datasets / "acav100m" / "validation_set_features.npy"),
            ("impulse responses", self.datasets / "mit_rir"),
            ("FSD50K clips", self.datasets / "fsd50k" / "dev"),
            ("", self.datasets / "fsd50k" / "eval"),
            ("manifest", root / ".cache" / "manifest.json"),
            ("catalog", root / "datasets.toml"),
            ("Freesound library", root / "freesound_library"),
            ("its audio", root / "freesound_library" / "audio"),
            ("background clips", self.datasets / "freesound_background"),
            ("map", self.map_file),
            ("openWakeWord config", self.config_file),
        )
        for label, path in rows:
            self.say(f"  {label:<20} {path}")
        if temporary and not keep:
            self.say("(This workspace is removed now: `easy-oww demo --keep` keeps it, "
                     "`easy-oww demo --workspace DIR` puts it where you like.)")
        else:
            self.say("\nTry next, in this workspace:")
            self.say(f"  export EASY_OWW_WORKSPACE={shlex.quote(str(root))}")
            self.say("  easy-oww paths                    # each dataset's path, for scripts")
            self.say("  easy-oww freesound status         # the library: samples, edges, budget")
            self.say("  python3 -m webbrowser " + shlex.quote(self.map_file.as_uri())
                     + "   # the map")
            self.say("Then the real thing, in your own workspace (this one's catalog knows only "
                     "the demo's server, gone now):")
            self.say("  unset EASY_OWW_WORKSPACE")
        if temporary and not keep:
            self.say("\nThen the real thing:")
        self.say("  easy-oww doctor                   # can every source be reached from here?")
        self.say("  easy-oww download                 # the training datasets, about 17.5 GB")
        self.say("  export FREESOUND_API_KEY=...      # https://freesound.org/apiv2/apply/")
        self.say("  easy-oww freesound grow           # 50 real samples a run")

@contextmanager
def _servers(tour: Tour) -> Iterator[tuple[DemoOrigin, FreesoundStandin]]:
    origin = DemoOrigin(tour.hidden / "origin", tour.files, rate=RATE).start()
    try:
        # Freesound's own limits for a standard key (60 a minute, 2,000 a day), as the real
        # API answers them; no sounds deleted behind a stale similarity index (the stand-in's
        # quirk for the tests), so `freesound audio` finds every preview.
        standin = FreesoundStandin(STANDIN_SOUNDS, seed=0, api_key=DEMO_KEY, per_minute=60,
                                   per_day=2000, n_deleted=0).start()
        try:
            yield origin, standin
        finally:
            # A command still running (Ctrl-C, a failed step) ends before its servers do, or
            # it would say the connection was lost and retry.
            tour.stop_child()
            standin.stop()
    finally:
        origin.stop()


def run_tour(tour: Tour, temporary: bool, keep: bool) -> None:
    """Every step, in order; raises DemoStepError when a command fails."""
    tour.make_data()
    with _servers(tour) as (origin, standin):
        tour.start_servers(origin, standin)
        sent = tour.download_interrupted()
        tour.download_resumed(sent)
        tour.verify()
        tour.status()
        tour.grow()
        tour.audio()
        tour.visualize()
        tour.background()
        tour.oww_config()
    tour.summary(temporary, keep)


def remove_workspace(root: Path) -> None:
    shutil.rmtree(root, ignore_errors=True)
