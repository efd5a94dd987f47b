"""``oww-config``: the keys of the YAML openWakeWord's ``train.py`` reads, from what is
cached, merged round-trip into a user's config, and checked as the trainer will read them.

What the trainer does with the paths, and so what is checked (``openwakeword/train.py``):
every RIR folder is listed flat with ``os.scandir`` (no recursion, no extension filter) and
every entry is opened as 16 kHz audio, so a sub-folder, a ``.part`` file or a sidecar breaks a
batch later ("Clip does not have the correct sample rate!"); background folders keep
``*.wav`` only and fail when there is none; feature files are memory mapped, so a truncated
``.npy`` fails with "mmap length is greater than file size".
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from easy_oww.datasets.engine import DatasetEngine
from easy_oww.errors import BadInputError
from easy_oww.trainer.background import BACKGROUND, SAMPLE_RATE
from easy_oww.trainer.yamlfile import inside, load_yaml, plain, put, round_trip_yaml
from easy_oww.validate import FormatError, check_npy, read_wav_header

FEATURES_NAME = "ACAV100M_sample"  # openWakeWord's example config's name for these features
# The keys written, in openWakeWord's example order (examples/custom_model.yml).
TRAINER_KEYS = ("rir_paths", "background_paths", "background_paths_duplication_rate",
                "false_positive_validation_data_path", "feature_data_files")
# batch_n_per_class keys train.py adds itself (its generated clips), not feature files.
GENERATED_CLASSES = ("positive", "adversarial_negative")


@dataclass
class TrainerPaths:
    """What `oww-config` writes from what is cached, and one line for each dataset a key
    still wants (`wanting`: a problem when the key ends up with nothing, else a note)."""

    rir_paths: list[str] = field(default_factory=list)
    background_paths: list[str] = field(default_factory=list)
    false_positive_validation_data_path: str | None = None
    feature_data_files: dict[str, str] = field(default_factory=dict)
    wanting: dict[str, list[str]] = field(default_factory=dict)  # trainer key -> lines
    notes: list[str] = field(default_factory=list)

    def want(self, key: str, line: str) -> None:
        self.wanting.setdefault(key, []).append(f"{key}: {line}")


def _cached(engine: DatasetEngine, key: str, paths: TrainerPaths, key_for: str,
            command: str) -> Path | None:
    """The dataset's path when it is cached; else a line for `key_for` naming `command`."""
    if key not in engine.catalog.datasets:
        paths.want(key_for, f"the loaded catalogs have no dataset {key!r}")
        return None
    row = engine.status([key])[0]
    if row.status == "cached":
        return Path(row.path)
    paths.want(key_for, f"{key} is {row.status}; run `{command}`")
    return None


def trainer_paths(engine: DatasetEngine) -> TrainerPaths:
    """The paths openWakeWord's trainer wants, from what the manifest says is cached."""
    paths = TrainerPaths()
    rir = _cached(engine, "mit_rir", paths, "rir_paths", "easy-oww download --dataset mit_rir")
    if rir is not None:
        paths.rir_paths.append(str(rir))
    _fsd50k_folders(engine, paths)
    _converted_folders(engine, paths)
    if BACKGROUND in engine.catalog.datasets:
        row = engine.status([BACKGROUND])[0]
        if row.status == "cached":
            paths.background_paths.append(row.path)
        elif row.status == "missing":
            paths.notes.append(f"{BACKGROUND} is not made: `easy-oww freesound background` "
                               "adds your Freesound library's sounds to background_paths")
        else:
            paths.want("background_paths", f"{BACKGROUND} is {row.status}; run "
                       "`easy-oww freesound background`")
    if not paths.background_paths and "background_paths" not in paths.wanting:
        paths.want("background_paths", "no background audio is ready; run `easy-oww download "
                   "--dataset fsd50k --sample-rate 16000` or `easy-oww freesound background`")
    val = _cached(engine, "acav100m_val", paths, "false_positive_validation_data_path",
                  "easy-oww download --dataset acav100m_val")
    if val is not None:
        paths.false_positive_validation_data_path = str(val)
    train = _cached(engine, "acav100m_train", paths, "feature_data_files",
                    "easy-oww download --dataset acav100m_train")
    if train is not None:
        paths.feature_data_files[FEATURES_NAME] = str(train)
    return paths


def _fsd50k_folders(engine: DatasetEngine, paths: TrainerPaths) -> None:
    """FSD50K's clip folders when it was unpacked at 16 kHz (one per split unpacked)."""
    dataset = engine.catalog.datasets.get("fsd50k")
    if dataset is None:
        return
    row = engine.status(["fsd50k"])[0]
    if row.status == "missing":
        return  # optional: freesound_background may be the background
    if row.status != "cached":
        paths.want("background_paths", f"fsd50k is {row.status}; run `easy-oww download "
                   "--dataset fsd50k --sample-rate 16000`")
        return
    metadata = (engine.cache.entry("fsd50k") or {}).get("metadata") or {}
    if metadata.get("sample_rate") != SAMPLE_RATE:
        paths.notes.append(
            "fsd50k was unpacked at its original rate, not 16 kHz, so it is left out of "
            "background_paths; `easy-oww remove fsd50k --yes` then `easy-oww download "
            "--dataset fsd50k --sample-rate 16000` makes it usable")
        return
    split = metadata.get("split")
    for spec in dataset.unpack_for(None if split in (None, "both") else split):
        if spec.audio:
            paths.background_paths.append(str(engine.datasets_dir / spec.into))


def _converted_folders(engine: DatasetEngine, paths: TrainerPaths) -> None:
    """The folders a dataset's unpack converts to 16 kHz WAV (AudioSet, FMA: the recipes'
    background audio), once it is cached at that rate."""
    for dataset in engine.catalog.ordered():
        specs = [u for u in dataset.unpack if u.sample_rate == SAMPLE_RATE]
        if not specs or dataset.key in ("fsd50k", BACKGROUND):
            continue
        row = engine.status([dataset.key])[0]
        if row.status == "missing":
            continue  # optional: not every recipe takes every one
        if row.status != "cached":
            paths.want("background_paths", f"{dataset.key} is {row.status}; run `easy-oww "
                       f"download --dataset {dataset.key}`")
            continue
        rate = ((engine.cache.entry(dataset.key) or {}).get("metadata") or {}).get("sample_rate")
        if rate not in (None, SAMPLE_RATE):
            paths.notes.append(
                f"{dataset.key} was unpacked at {rate} Hz (--sample-rate), not 16 kHz, so it is "
                f"left out of background_paths; `easy-oww remove {dataset.key} --yes` then "
                f"`easy-oww download --dataset {dataset.key}` makes it usable")
            continue
        for into in dict.fromkeys(u.into for u in specs):
            paths.background_paths.append(str(engine.datasets_dir / into))


# ------------------------------------------------------------------------------- the checks
def _names(entries: list[str]) -> str:
    shown = ", ".join(entries[:3])
    return shown + (f" and {len(entries) - 3} more" if len(entries) > 3 else "")


def _ours(engine: DatasetEngine, folder: Path) -> str | None:
    """The dataset a folder or file belongs to (it lies under its location), if any."""
    for dataset in engine.catalog.datasets.values():
        where = engine.datasets_dir / dataset.location
        if folder == where or folder.is_relative_to(where):
            return dataset.key
    return None


def check_rir_folder(engine: DatasetEngine, folder: Path) -> list[str]:
    """What in a RIR folder openWakeWord would open as a 16 kHz clip and fail on."""
    if not folder.is_dir():
        return [f"rir_paths: {folder} is not a folder; point rir_paths at a folder of 16 kHz "
                "WAV files"]
    key = _ours(engine, folder)
    redo = (f"run `easy-oww download --dataset {key}` to finish it, then `easy-oww clean`"
            if key else "move them out of the folder")
    subfolders, partial, other, wrong_rate, broken = [], [], [], [], []
    wavs = 0
    with os.scandir(folder) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            if entry.is_dir():
                subfolders.append(entry.name)
            elif entry.name.endswith((".part", ".part.json")) or ".part.json." in entry.name:
                partial.append(entry.name)
            elif not entry.name.lower().endswith(".wav"):
                other.append(entry.name)
            else:
                try:
                    rate = read_wav_header(Path(entry.path)).sample_rate
                except (FormatError, OSError):
                    broken.append(entry.name)
                    continue
                if rate != SAMPLE_RATE:
                    wrong_rate.append(f"{entry.name} ({rate} Hz)")
                else:
                    wavs += 1
    problems = []
    where = f"rir_paths: {folder}"
    if subfolders:
        problems.append(f"{where} holds sub-folders ({_names(subfolders)}), which openWakeWord "
                        "lists flat and opens as audio; move them out of the folder")
    if partial:
        problems.append(f"{where} holds partial downloads ({_names(partial)}); {redo}")
    if other:
        problems.append(f"{where} holds files that are not WAV ({_names(other)}); move them "
                        "out of the folder")
    if wrong_rate:
        fix = (f"run `easy-oww verify {key}` and `easy-oww download --dataset {key}`" if key
               else "resample them to 16 kHz mono (e.g. `sox in.wav -r 16000 -c 1 out.wav`)")
        problems.append(f"{where} holds WAVs that are not 16 kHz ({_names(wrong_rate)}); {fix}")
    if broken:
        fix = (f"run `easy-oww verify {key} --deep`" if key else "replace or remove them")
        problems.append(f"{where} holds WAVs whose header does not read ({_names(broken)}); "
                        f"{fix}")
    if not wavs and not problems:
        fix = (f"run `easy-oww download --dataset {key}`" if key
               else "put 16 kHz WAV impulse responses in it")
        problems.append(f"{where} holds no WAV files; {fix}")
    return problems


def check_background_folder(engine: DatasetEngine, folder: Path) -> list[str]:
    """openWakeWord keeps ``*.wav`` only and fails on a background folder with none."""
    if not folder.is_dir():
        return [f"background_paths: {folder} is not a folder; remove it from background_paths "
                "or create it"]
    if any(folder.glob("*.wav")):
        return []
    key = _ours(engine, folder)
    fix = {BACKGROUND: "run `easy-oww freesound background`",
           "fsd50k": "run `easy-oww download --dataset fsd50k --sample-rate 16000`"}.get(
        key or "", "put 16 kHz WAV files in it (openWakeWord reads *.wav only, not MP3)")
    return [f"background_paths: {folder} holds no WAV files; {fix}"]


def check_features(engine: DatasetEngine, path: Path, what: str) -> list[str]:
    """A features file whose .npy header does not match its size (a truncated download):
    the trainer's memory map fails with "mmap length is greater than file size"."""
    key = _ours(engine, path)
    pins: dict[str, Any] = {}
    if key is not None:
        entry = next((f for f in engine.catalog.get(key).files
                      if engine.datasets_dir / f.path == path), None)
        if entry is not None:
            pins = {"shape": entry.shape, "dtype": entry.dtype}
    try:
        check_npy(path, **{k: v for k, v in pins.items() if v is not None})
    except FormatError as exc:
        fix = (f"run `easy-oww verify {key}`, then `easy-oww download --dataset {key}`" if key
               else "replace it with a complete copy")
        return [f"{what}: {exc}; {fix}"]
    except OSError as exc:
        return [f"{what}: {path}: {exc.strerror or exc}"]
    return []


def check_config(engine: DatasetEngine, config: dict[str, Any]) -> list[str]:
    """Everything in the trainer's keys of `config` that openWakeWord would trip on."""
    problems: list[str] = []
    for folder in config.get("rir_paths") or []:
        problems += check_rir_folder(engine, Path(str(folder)))
    backgrounds = list(config.get("background_paths") or [])
    for folder in backgrounds:
        problems += check_background_folder(engine, Path(str(folder)))
    rates = config.get("background_paths_duplication_rate")
    if rates is not None and len(list(rates)) != len(backgrounds):
        count = len(list(rates))
        problems.append(f"background_paths_duplication_rate has {count} "
                        f"value{'' if count == 1 else 's'} for {len(backgrounds)} "
                        "background_paths; give one per folder")
    fp = config.get("false_positive_validation_data_path")
    if fp:
        problems += check_features(engine, Path(str(fp)), "false_positive_validation_data_path")
    features = config.get("feature_data_files") or {}
    for name, path in features.items():
        problems += check_features(engine, Path(str(path)), f"feature_data_files.{name}")
    batch = config.get("batch_n_per_class")
    if isinstance(batch, dict) and features:
        missing = [n for n in features if n not in batch]
        unknown = [n for n in batch if n not in features and n not in GENERATED_CLASSES]
        if missing:
            problems.append(f"batch_n_per_class has no count for {_names(missing)} of "
                            "feature_data_files; add one (openWakeWord's example: "
                            f"{FEATURES_NAME}: 1024)")
        if unknown:
            problems.append(f"batch_n_per_class names {_names(unknown)}, which "
                            "feature_data_files does not; remove it or add its features file")
    return problems


# ------------------------------------------------------------------------------ the YAML
@dataclass
class OwwConfig:
    """The trainer's keys merged into a config (a user's, or a new one), and its checks."""

    text: str  # the whole YAML document as written
    values: dict[str, Any]  # the trainer's keys as they stand in it
    problems: list[str]
    notes: list[str]


def _merge_folders(config: Any, paths: list[str], root: Path, rate: int) -> None:
    """background_paths (and their rates): the user's own folders stay, with their rates and
    comments; those under the datasets folder are easy-oww's and are written anew."""
    from ruamel.yaml.comments import CommentedSeq  # see yamlfile.round_trip_yaml

    old = config.get("background_paths")
    old = old if isinstance(old, list) else []
    rates = config.get("background_paths_duplication_rate")
    rates = rates if isinstance(rates, list) and len(rates) == len(old) else [1] * len(old)
    kept = [(p, r) for p, r in zip(old, rates, strict=True) if not inside(p, root)]
    folders = config.get("background_paths")
    if not isinstance(folders, list):
        folders = CommentedSeq()
        put(config, "background_paths", folders)
    for index in reversed(range(len(folders))):
        if inside(folders[index], root):
            del folders[index]
    folders.extend(paths)
    new_rates = [r for _, r in kept] + [rate] * len(paths)
    current = config.get("background_paths_duplication_rate")
    if isinstance(current, list):
        current[:] = new_rates
    else:
        put(config, "background_paths_duplication_rate", new_rates)


def _merge_list(config: Any, key: str, paths: list[str], root: Path) -> None:
    from ruamel.yaml.comments import CommentedSeq  # see yamlfile.round_trip_yaml

    items = config.get(key)
    if not isinstance(items, list):
        items = CommentedSeq()
        put(config, key, items)
    for index in reversed(range(len(items))):
        if inside(items[index], root):
            del items[index]
    items.extend(p for p in paths if p not in items)


def oww_config(engine: DatasetEngine, *, into: Path | None = None,
               duplication_rate: int = 1) -> OwwConfig:
    """openWakeWord's trainer keys from what is cached, merged into the config `into` (its
    other keys, order and comments kept) or into a new document; then every path checked as
    the trainer will read it. Nothing is written: the caller writes `text`."""
    from ruamel.yaml.comments import CommentedMap  # see yamlfile.round_trip_yaml

    if duplication_rate < 1:
        raise BadInputError("--duplication-rate must be 1 or more")
    paths = trainer_paths(engine)
    if into is not None:
        config = load_yaml(into)
    else:
        config = CommentedMap()
        config.yaml_set_start_comment(
            f"openWakeWord training paths, written by `easy-oww oww-config` from "
            f"{engine.datasets_dir}.\nMerge them into your training config (or run "
            "`easy-oww oww-config --into YOUR.yml`).")
    root = engine.datasets_dir
    _merge_list(config, "rir_paths", paths.rir_paths, root)
    _merge_folders(config, paths.background_paths, root, duplication_rate)
    if paths.false_positive_validation_data_path is not None:
        put(config, "false_positive_validation_data_path",
             paths.false_positive_validation_data_path)
    if paths.feature_data_files:
        features = config.get("feature_data_files")
        if not isinstance(features, dict):
            features = CommentedMap()
            put(config, "feature_data_files", features)
        for name in [n for n, p in features.items() if inside(p, root)
                     and n not in paths.feature_data_files]:
            del features[name]  # easy-oww's, under a name no longer written
        for name, path in paths.feature_data_files.items():
            put(features, name, path)
    stream = io.StringIO()
    round_trip_yaml().dump(config, stream)
    values = {key: plain(config[key]) for key in TRAINER_KEYS if key in config}
    problems: list[str] = []
    notes = list(paths.notes)
    for key, lines in paths.wanting.items():
        # Nothing under the key (the trainer would fail), or the user's own is there (fine).
        (notes if values.get(key) else problems).extend(lines)
    problems += check_config(engine, {
        **values, "batch_n_per_class": plain(config.get("batch_n_per_class"))})
    return OwwConfig(text=stream.getvalue(), values=values, problems=problems, notes=notes)
