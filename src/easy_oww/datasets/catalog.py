"""The catalog: which datasets exist, where their files come from and where they land.

Three layers, later ones replacing whole dataset entries of earlier ones: the built-in
``catalog.toml``, ``<workspace>/datasets.toml``, and ``--catalog FILE``. Every value is
checked on load; a bad catalog is refused with one line naming the file, dataset and key.

A layer may also name recipes (``[recipes.<key>]``): the datasets one trainer's own set-up
downloads (openWakeWord's notebook, microWakeWord's), fetched with ``download --recipe KEY``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any

from easy_oww.datasets.sources import FileEntry, SourceEntryError, parse_source, source_keys
from easy_oww.errors import BadInputError, CatalogError
from easy_oww.hashes import KnownHash

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib

PRIORITIES = ("critical", "recommended", "optional")
REQUIRED_PRIORITIES = ("critical", "recommended")  # the seed's "required" set
FORMATS = ("npy", "wav", "zip", "tar")
DEFAULT_MAX_RATIO = 200.0  # zip-bomb guard: output bytes per archive byte

# The keys of every file entry, whatever its source; each source kind adds its own.
_FILE_TYPES: dict[str, type | tuple[type, ...]] = {
    "path": str, "size": int, "hash": str, "format": str, "shape": list,
    "dtype": str, "sample_rate": int, "channels": int,
}
_DATASET_TYPES: dict[str, type | tuple[type, ...]] = {
    "name": str, "description": str, "priority": str, "license": str, "homepage": str,
    "path": str, "files": list, "unpack": (dict, list), "approx_size": int, "fallback": dict,
}
# A fallback is one Hub folder (its own source keys) plus how its files become the unpack
# folder's audio; only Parquet shards of encoded audio so far (AudioSet after its conversion).
_FALLBACK_TYPES: dict[str, type | tuple[type, ...]] = {
    "path": str, "format": str, "audio_column": str, "name_column": str, "into": str,
    "sample_rate": int, "max_files": int,
}
FALLBACK_FORMATS = ("parquet",)
_RECIPE_TYPES: dict[str, type] = {
    "name": str, "description": str, "datasets": list, "then": str, "homepage": str,
}
_UNPACK_TYPES: dict[str, type | tuple[type, ...]] = {
    "format": str, "into": str, "files": list, "strip_components": int,
    "max_ratio": (int, float), "split": str, "audio": bool, "sample_rate": int,
    "flatten": bool, "checksums": str, "silent": list,
}
SAMPLE_RATES = (8000, 48000)  # what an unpack may convert to, as --sample-rate allows


@dataclass(frozen=True)
class UnpackSpec:
    format: str
    into: str
    files: tuple[str, ...]
    strip_components: int = 0
    max_ratio: float | None = None
    split: str | None = None  # a part users may choose alone (FSD50K's "dev" / "eval")
    audio: bool = False  # its WAV members may be resampled on the way out (--sample-rate)
    sample_rate: int | None = None  # always convert its audio members (to 16-bit mono WAV)
    flatten: bool = False  # every file member lands in `into` itself, under its base name
    checksums: str | None = None  # a sha1sum list inside the archive, checked member by member
    silent: tuple[str, ...] = ()  # names (without extension) of tracks known to hold no audio

    @property
    def converts(self) -> bool:
        """Its audio members may be converted (always, or with --sample-rate)."""
        return self.audio or self.sample_rate is not None


@dataclass(frozen=True)
class Fallback:
    """Another route to a dataset's audio, taken when its own files answer "not found" (the
    Hub removed them): a folder of Parquet shards whose rows hold encoded audio, each row
    converted to ``<name_column>.wav`` in `into`, the folder the primary route fills."""

    entry: FileEntry  # an hf_folder source; `path` is where the shards land while converted
    format: str
    audio_column: str
    name_column: str
    into: str
    sample_rate: int
    max_files: int | None = None  # only the first N shards of the listing, by name

    def describe(self) -> str:
        """Where it reads, for the one line saying the fallback is taken."""
        source = self.entry.source
        where = (f"{getattr(source, 'repo', '?')} {getattr(source, 'revision', '?')}, "
                 f"{getattr(source, 'folder', '?')}/")
        first = "" if self.max_files is None else f", the first {self.max_files} by name"
        return f"{where}*.{self.format}{first}"


@dataclass(frozen=True)
class Dataset:
    key: str
    name: str
    priority: str
    files: tuple[FileEntry, ...]
    description: str = ""
    license: str = ""
    homepage: str = ""
    path: str | None = None
    unpack: tuple[UnpackSpec, ...] = ()
    source: str = "built-in"
    approx_size: int | None = None  # shown until a listing gives the exact size
    fallback: Fallback | None = None
    on_fallback: bool = False  # this is the dataset as its fallback route fetches it

    @property
    def listing_key(self) -> str:
        """The name its cached listings go under (the fallback's are not the primary's)."""
        return f"{self.key}.fallback" if self.on_fallback else self.key

    def via_fallback(self) -> Dataset:
        """The dataset as its fallback fetches it: the fallback's folder as its one file, no
        unpack steps (the engine converts the shards itself)."""
        assert self.fallback is not None
        return replace(self, files=(self.fallback.entry,), unpack=(), on_fallback=True)

    @property
    def route(self) -> str:
        """The route's name the manifest records ("tars", "parquet"); "" for a dataset
        with one route only."""
        if self.on_fallback and self.fallback is not None:
            return self.fallback.format
        if self.fallback is None:
            return ""
        formats = {u.format for u in self.unpack}
        return f"{formats.pop()}s" if len(formats) == 1 else "files"

    @property
    def location(self) -> str:
        """Where the dataset lives, relative to the datasets folder (a file or a folder)."""
        if self.path:
            return self.path
        if self.on_fallback and self.fallback is not None:
            return self.fallback.into  # what its shards become, as the tars' unpack would
        if self.unpack:  # what its archives become, not the archives (removed once out)
            return _common_folder([u.into for u in self.unpack])
        if len(self.files) == 1 and not self.files[0].lands_in_folder:
            return self.files[0].path
        # A Hub folder entry's path is the folder itself; a plain file lives in its parent.
        return _common_folder([f.path if f.lands_in_folder else str(PurePosixPath(f.path).parent)
                               for f in self.files])

    def claims(self) -> list[tuple[str, bool]]:
        """Every path the dataset writes under, as (path, is a folder of its own): its files,
        its Hub folders and its unpack folders."""
        fallback = [(self.fallback.entry.path, True)] if self.fallback else []
        return [(f.path, f.lands_in_folder) for f in self.files] + [
            (u.into, True) for u in self.unpack] + fallback

    @property
    def is_required(self) -> bool:
        return self.priority in REQUIRED_PRIORITIES

    @property
    def splits(self) -> list[str]:
        return sorted({u.split for u in self.unpack if u.split})

    def unpack_for(self, split: str | None) -> tuple[UnpackSpec, ...]:
        """The unpack steps of one split (None: all); steps without a split always run."""
        return tuple(u for u in self.unpack if split is None or u.split in (None, split))

    def paths_for(self, split: str | None) -> set[str]:
        """The file paths needed for one split (None: every file)."""
        if split is None:
            return {f.path for f in self.files}
        other = {p for u in self.unpack if u.split not in (None, split) for p in u.files}
        mine = {p for u in self.unpack_for(split) for p in u.files}
        return {f.path for f in self.files if f.path in mine or f.path not in other}


def _common_folder(folders: list[str]) -> str:
    """The deepest folder holding every one of `folders` ("." for the datasets folder)."""
    parts = [PurePosixPath(p).parts for p in folders]
    common: list[str] = []
    for group in zip(*parts, strict=False):
        if len(set(group)) != 1:
            break
        common.append(group[0])
    return str(PurePosixPath(*common)) if common else "."


def _check_overlaps(datasets: Iterable[Dataset]) -> None:
    """Refuse two datasets writing to one path, or one writing inside another's Hub or unpack
    folder: `remove` of one would delete the other's files."""
    owners: dict[str, tuple[Dataset, bool]] = {}
    for dataset in datasets:
        for path, folder in dataset.claims():
            other = owners.get(path)
            if other is None or other[0].key == dataset.key:
                owners[path] = (dataset, folder or (other is not None and other[1]))
                continue
            raise _overlap(other[0], dataset, path)
    for path, (dataset, _) in owners.items():
        for parent in PurePosixPath(path).parents:
            other = owners.get(str(parent))
            if other is not None and other[1] and other[0].key != dataset.key:
                raise _overlap(other[0], dataset, path)


def _overlap(first: Dataset, second: Dataset, path: str) -> CatalogError:
    where = first.source if first.source == second.source else (
        f"{first.source} and {second.source}")
    return CatalogError(
        f"{where}: datasets {first.key!r} and {second.key!r} both claim {path!r} (a file, or "
        "a folder and a path inside it); give each dataset its own paths")


@dataclass(frozen=True)
class Recipe:
    """The datasets one trainer's recipe downloads, and the command that hands them to it."""

    key: str
    name: str
    datasets: tuple[str, ...]
    description: str = ""
    then: str = ""  # e.g. "easy-oww oww-config": what to run once the datasets are cached
    homepage: str = ""
    source: str = "built-in"


@dataclass(frozen=True)
class _Layer:
    """One catalog file, parsed."""

    include_builtin: bool
    datasets: list[Dataset]
    recipes: list[Recipe]


@dataclass
class Catalog:
    datasets: dict[str, Dataset] = field(default_factory=dict)
    recipes: dict[str, Recipe] = field(default_factory=dict)

    @classmethod
    def load(cls, *extra: Path | str | None) -> "Catalog":
        """The built-in catalog overlaid by each existing file in `extra`, in order."""
        layers = [_read_layer(Path(p)) for p in extra if p is not None]
        catalog = cls()
        # A layer with `include_builtin = false` stands alone (a mirror, a test, an offline
        # site); otherwise layers add to or replace entries of the built-in catalog.
        if all(layer.include_builtin for layer in layers):
            builtin = resources.files("easy_oww.datasets").joinpath("catalog.toml")
            layers.insert(0, _parse_layer(builtin.read_text(encoding="utf-8"),
                                          "built-in catalog"))
        for layer in layers:
            catalog.merge(layer.datasets)
            catalog.recipes.update((recipe.key, recipe) for recipe in layer.recipes)
        _check_overlaps(catalog.datasets.values())
        _check_recipes(catalog)
        return catalog

    def merge(self, datasets: Iterable[Dataset]) -> None:
        for dataset in datasets:
            self.datasets[dataset.key] = dataset

    def get(self, key: str) -> Dataset:
        try:
            return self.datasets[key]
        except KeyError:
            known = ", ".join(sorted(self.datasets))
            raise BadInputError(f"unknown dataset {key!r}; known datasets: {known}") from None

    def ordered(self) -> list[Dataset]:
        """Datasets in display order: critical first, then recommended, then optional."""
        return sorted(
            self.datasets.values(),
            key=lambda d: (PRIORITIES.index(d.priority), list(self.datasets).index(d.key)),
        )

    def recipe(self, key: str) -> Recipe:
        try:
            return self.recipes[key]
        except KeyError:
            known = ", ".join(sorted(self.recipes)) or "none"
            raise BadInputError(f"unknown recipe {key!r}; known recipes: {known} "
                                "(`easy-oww recipes` lists them)") from None

    def select(self, *, all_: bool = False, keys: Iterable[str] = ()) -> list[Dataset]:
        keys = list(keys)
        if keys:
            return [self.get(k) for k in dict.fromkeys(keys)]
        return [d for d in self.ordered() if all_ or d.is_required]


def parse_file(path: Path) -> tuple[bool, list[Dataset]]:
    """(include the built-in catalog?, datasets) of one catalog file."""
    layer = _read_layer(path)
    return layer.include_builtin, layer.datasets


def _read_layer(path: Path) -> _Layer:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInputError(f"catalog {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInputError(f"catalog {path} cannot be read: {exc}") from None
    return _parse_layer(text, str(path))


def _parse_layer(text: str, origin: str) -> _Layer:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{origin}: not valid TOML: {exc}") from None
    unknown = set(data) - {"datasets", "recipes", "include_builtin"}
    if unknown:
        raise CatalogError(f"{origin}: unknown top-level key {sorted(unknown)[0]!r} "
                           "(allowed: include_builtin, [datasets.<key>] and [recipes.<key>] "
                           "tables)")
    include = data.get("include_builtin", True)
    if not isinstance(include, bool):
        raise CatalogError(f"{origin}: key 'include_builtin' must be true or false")
    tables = data.get("datasets", {})
    if not isinstance(tables, dict):
        raise CatalogError(f"{origin}: 'datasets' must be a table of [datasets.<key>] tables")
    recipes = data.get("recipes", {})
    if not isinstance(recipes, dict):
        raise CatalogError(f"{origin}: 'recipes' must be a table of [recipes.<key>] tables")
    return _Layer(include, [_parse_dataset(key, value, origin) for key, value in tables.items()],
                  [_parse_recipe(key, value, origin) for key, value in recipes.items()])


def _parse_recipe(key: str, table: Any, origin: str) -> Recipe:
    def error(field_name: str, problem: str) -> CatalogError:
        return CatalogError(f"{origin}: recipe {key!r}, key {field_name!r}: {problem}")

    if not isinstance(table, dict):
        raise error(key, "must be a table")
    for name, value in table.items():
        if name not in _RECIPE_TYPES:
            raise error(name, f"unknown key (allowed: {', '.join(sorted(_RECIPE_TYPES))})")
        if not isinstance(value, _RECIPE_TYPES[name]):
            raise error(name, f"must be {_RECIPE_TYPES[name].__name__}, "
                        f"got {type(value).__name__}")
    datasets = table.get("datasets")
    if not datasets or not all(isinstance(d, str) for d in datasets):
        raise error("datasets", "a recipe names at least one dataset key, as a list of strings")
    return Recipe(key=key, name=table.get("name", key), datasets=tuple(dict.fromkeys(datasets)),
                  description=table.get("description", ""), then=table.get("then", ""),
                  homepage=table.get("homepage", ""), source=origin)


def _check_recipes(catalog: Catalog) -> None:
    """Every recipe names datasets the loaded catalogs have (checked once all layers are in:
    a recipe may name a dataset another layer adds)."""
    for recipe in catalog.recipes.values():
        for key in recipe.datasets:
            if key not in catalog.datasets:
                raise CatalogError(f"{recipe.source}: recipe {recipe.key!r} names dataset "
                                   f"{key!r}, which no loaded catalog has")


class _Where:
    """Builds the 'file, dataset, key' prefix of every catalog error."""

    def __init__(self, origin: str, dataset: str) -> None:
        self.origin, self.dataset = origin, dataset

    def error(self, key: str, problem: str) -> CatalogError:
        return CatalogError(f"{self.origin}: dataset {self.dataset!r}, key {key!r}: {problem}")

    def check_types(self, table: dict[str, Any], types: dict[str, Any], prefix: str) -> None:
        for key, value in table.items():
            if key not in types:
                allowed = ", ".join(sorted(types))
                raise self.error(prefix + key, f"unknown key (allowed: {allowed})")
            expected = types[key]
            # TOML's true/false are Python ints too: only a bool field accepts them.
            wants_bool = expected is bool
            if isinstance(value, bool) != wants_bool or not isinstance(value, expected):
                names = expected.__name__ if isinstance(expected, type) else " or ".join(
                    t.__name__ for t in expected)
                raise self.error(prefix + key, f"must be {names}, got {type(value).__name__}")


def _parse_dataset(key: str, table: Any, origin: str) -> Dataset:
    where = _Where(origin, key)
    if not isinstance(table, dict):
        raise where.error(key, "must be a table")
    if not key.replace("_", "").replace("-", "").isalnum():
        raise where.error(key, "dataset keys use letters, digits, '_' and '-' only")
    where.check_types(table, _DATASET_TYPES, "")
    priority = table.get("priority", "optional")
    if priority not in PRIORITIES:
        raise where.error("priority", f"must be one of {', '.join(PRIORITIES)}, got {priority!r}")
    raw_files = table.get("files")
    if not raw_files:
        raise where.error("files", "a dataset needs at least one [[datasets.<key>.files]] entry")
    files = tuple(_parse_file(where, i, f) for i, f in enumerate(raw_files))
    paths = [f.path for f in files]
    if len(set(paths)) != len(paths):
        raise where.error("files", "two files land on the same path")
    unpack_raw = table.get("unpack", [])
    unpack_list = [unpack_raw] if isinstance(unpack_raw, dict) else unpack_raw
    unpack = tuple(_parse_unpack(where, i, u, paths) for i, u in enumerate(unpack_list))
    path = table.get("path")
    if path is not None:
        path = _safe_path(where, "path", path)
    fallback = None
    if "fallback" in table:
        fallback = _parse_fallback(where, table["fallback"], unpack, paths)
    return Dataset(
        key=key, name=table.get("name", key), priority=priority, files=files,
        description=table.get("description", ""), license=table.get("license", ""),
        homepage=table.get("homepage", ""), path=path, unpack=unpack, source=origin,
        approx_size=table.get("approx_size"), fallback=fallback,
    )


def _parse_fallback(where: _Where, table: dict[str, Any], unpack: tuple[UnpackSpec, ...],
                    paths: list[str]) -> Fallback:
    prefix = "fallback."
    where.check_types(table, {**_FALLBACK_TYPES, **source_keys()}, prefix)
    own = {k: v for k, v in table.items() if k in _FALLBACK_TYPES}
    try:
        source = parse_source({k: v for k, v in table.items() if k not in _FALLBACK_TYPES})
    except SourceEntryError as exc:
        raise where.error((prefix + exc.key) if exc.key else "fallback", exc.problem) from None
    if source.kind != "hf_folder":
        raise where.error("fallback", f"a fallback is a Hub folder (hf_repo + hf_folder), "
                          f"not {source.kind}")
    fmt = own.get("format")
    if fmt not in FALLBACK_FORMATS:
        raise where.error(prefix + "format", f"must be one of {', '.join(FALLBACK_FORMATS)}")
    for column in ("audio_column", "name_column"):
        if not str(own.get(column, "")).strip():
            raise where.error(prefix + column, "missing: the Parquet column holding "
                              + ("each row's audio ({bytes, path})" if column == "audio_column"
                                 else "each row's name (the WAV is <name>.wav)"))
    if "path" not in own:
        raise where.error(prefix + "path", "missing: where the shards land while converted, "
                          "relative to datasets/")
    shards = _safe_path(where, prefix + "path", own["path"])
    if shards in paths:
        raise where.error(prefix + "path", f"{shards!r} is already a file of the dataset")
    intos = {u.into for u in unpack}
    rates = {u.sample_rate for u in unpack if u.sample_rate}
    if "into" in own:
        into = _safe_path(where, prefix + "into", own["into"])
    elif len(intos) == 1:
        into = intos.pop()  # the folder the primary route fills: `paths` names one folder
    else:
        raise where.error(prefix + "into", "missing: the folder the converted WAVs go to "
                          "(needed when the dataset does not unpack into one folder)")
    rate = own.get("sample_rate", rates.pop() if len(rates) == 1 else None)
    if rate is None or not SAMPLE_RATES[0] <= rate <= SAMPLE_RATES[1]:
        raise where.error(prefix + "sample_rate", f"must be from {SAMPLE_RATES[0]} to "
                          f"{SAMPLE_RATES[1]} Hz (openWakeWord reads 16000)")
    limit = own.get("max_files")
    if limit is not None and limit < 1:
        raise where.error(prefix + "max_files", "must be at least 1")
    return Fallback(entry=FileEntry(path=shards, source=source), format=fmt,
                    audio_column=own["audio_column"], name_column=own["name_column"],
                    into=into, sample_rate=rate, max_files=limit)


def _safe_path(where: _Where, key: str, value: str) -> str:
    """A relative POSIX path that stays inside the datasets folder."""
    if "\\" in value or (len(value) > 1 and value[1] == ":"):
        raise where.error(key, f"{value!r}: use forward slashes and a relative path")
    pure = PurePosixPath(value)
    if pure.is_absolute() or not value.strip():
        raise where.error(key, f"{value!r} must be relative to the datasets folder")
    if ".." in pure.parts:
        raise where.error(key, f"{value!r} escapes the datasets folder")
    return str(pure)


def _parse_file(where: _Where, index: int, table: Any) -> FileEntry:
    prefix = f"files[{index}]."
    if not isinstance(table, dict):
        raise where.error(prefix.rstrip("."), "must be a table")
    where.check_types(table, {**_FILE_TYPES, **source_keys()}, prefix)
    common = {key: value for key, value in table.items() if key in _FILE_TYPES}
    try:
        source = parse_source({k: v for k, v in table.items() if k not in _FILE_TYPES})
    except SourceEntryError as exc:
        raise where.error((prefix + exc.key) if exc.key else prefix.rstrip("."),
                          exc.problem) from None
    if "path" not in table:
        raise where.error(prefix + "path", "missing: where the file lands, relative to datasets/")
    values: dict[str, Any] = dict(common)
    values["path"] = _safe_path(where, prefix + "path", table["path"])
    if "size" in table and table["size"] < 0:
        raise where.error(prefix + "size", "must not be negative")
    if "hash" in table:
        try:
            values["hash"] = KnownHash.parse(table["hash"])
        except ValueError as exc:
            raise where.error(prefix + "hash", str(exc)) from None
    if "format" in table and table["format"] not in FORMATS:
        raise where.error(prefix + "format", f"must be one of {', '.join(FORMATS)}")
    if "shape" in table:
        shape = table["shape"]
        if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape):
            raise where.error(prefix + "shape", "must be a list of non-negative integers")
        values["shape"] = tuple(shape)
    return FileEntry(source=source, **values)


def _parse_unpack(where: _Where, index: int, table: Any, paths: list[str]) -> UnpackSpec:
    prefix = f"unpack[{index}]."
    if not isinstance(table, dict):
        raise where.error("unpack", "must be a table or an array of tables")
    where.check_types(table, _UNPACK_TYPES, prefix)
    fmt = table.get("format")
    if fmt not in ("zip", "tar"):
        raise where.error(prefix + "format", "must be 'zip' or 'tar'")
    if "into" not in table:
        raise where.error(prefix + "into", "missing: the folder the members go to")
    into = _safe_path(where, prefix + "into", table["into"])
    files = table.get("files", paths)
    for name in files:
        if name not in paths:
            raise where.error(prefix + "files", f"{name!r} is not the path of a dataset file")
    rate = table.get("sample_rate")
    if rate is not None and not SAMPLE_RATES[0] <= rate <= SAMPLE_RATES[1]:
        raise where.error(prefix + "sample_rate", f"{rate} Hz: must be from {SAMPLE_RATES[0]} "
                          f"to {SAMPLE_RATES[1]} (openWakeWord reads 16000)")
    checksums = table.get("checksums")
    if checksums is not None:
        pure = PurePosixPath(checksums)
        if not checksums.strip() or pure.is_absolute() or ".." in pure.parts or "\\" in checksums:
            raise where.error(prefix + "checksums", f"{checksums!r}: give the list's path "
                              "inside the archive, relative, with forward slashes")
    silent = table.get("silent", [])
    if not all(isinstance(name, str) and name.strip() and "/" not in name for name in silent):
        raise where.error(prefix + "silent", "must be a list of track names without folder or "
                          "extension, e.g. [\"099134\"]")
    if silent and rate is None and not table.get("audio", False):
        raise where.error(prefix + "silent", "only means something when audio is converted: "
                          "add sample_rate (or audio = true)")
    return UnpackSpec(
        format=fmt, into=into, files=tuple(files),
        strip_components=table.get("strip_components", 0), max_ratio=table.get("max_ratio"),
        split=table.get("split"), audio=table.get("audio", False), sample_rate=rate,
        flatten=table.get("flatten", False), checksums=checksums, silent=tuple(silent),
    )
