"""``mww-config``: the ``features`` entries of microWakeWord's training parameters for the
negative feature sets easy-oww downloaded, merged round-trip into a user's YAML.

microWakeWord's ``basic_training_notebook.ipynb`` unzips ``kahrendt/microwakeword``'s four
sets into ``negative_datasets/<name>/`` and lists each in ``training_parameters.yaml`` with
these weights: ``speech`` and ``dinner_party`` sampled at 10.0, ``no_speech`` at 5.0, all with
``truncation_strategy: random``; ``dinner_party_eval`` (long recordings) at 0.0 with ``split``,
used only for the false accepts per hour of validation and testing. Each set is a folder of
mmap_ninja ``RaggedMmap`` folders (uint16 spectrograms) that the trainer memory maps.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from easy_oww.datasets.engine import DatasetEngine
from easy_oww.errors import BadInputError
from easy_oww.trainer.yamlfile import inside, load_yaml, plain, put, round_trip_yaml

NEGATIVES = "microwakeword_negatives"  # the catalog's dataset of the four sets
# (folder, sampling_weight, truncation_strategy) as microWakeWord's notebook sets them.
NEGATIVE_SETS = (("speech", 10.0, "random"), ("dinner_party", 10.0, "random"),
                 ("no_speech", 5.0, "random"), ("dinner_party_eval", 0.0, "split"))
# The notebook's entry for the wake word's own features (generated and augmented clips).
POSITIVE = {"sampling_weight": 2.0, "penalty_weight": 1.0, "truth": True,
            "truncation_strategy": "truncate_start", "type": "mmap"}


@dataclass
class MwwConfig:
    text: str  # the YAML document as written
    features: list[dict[str, Any]]  # the `features` list as it stands in it
    problems: list[str]


def feature_entries(engine: DatasetEngine, positive: Path | None = None
                    ) -> tuple[list[dict[str, Any]], list[str]]:
    """The `features` entries for what is cached, and one line per thing still missing."""
    entries: list[dict[str, Any]] = []
    problems: list[str] = []
    if positive is not None:
        if not positive.is_dir():
            problems.append(f"--positive {positive} is not a folder; point it at the wake "
                            "word's generated features (the notebook's "
                            "generated_augmented_features)")
        entries.append({"features_dir": str(positive), **POSITIVE})
    if NEGATIVES not in engine.catalog.datasets:
        return entries, problems + [f"the loaded catalogs have no dataset {NEGATIVES!r}"]
    row = engine.status([NEGATIVES])[0]
    if row.status != "cached":
        return entries, problems + [
            f"{NEGATIVES} is {row.status}; run `easy-oww download --recipe microwakeword` "
            f"(or `--dataset {NEGATIVES}`)"]
    dataset = engine.catalog.get(NEGATIVES)
    # The sets are the top folders of its zips: under its unpack folder (or its own folder).
    roots = [engine.datasets_dir / u.into for u in dataset.unpack] or [Path(row.path)]
    for name, weight, strategy in NEGATIVE_SETS:
        folder = next((r / name for r in roots if (r / name).is_dir()), roots[0] / name)
        if not folder.is_dir() or not any(folder.iterdir()):
            problems.append(f"{folder} is missing or empty; run `easy-oww verify {NEGATIVES}` "
                            f"and `easy-oww download --dataset {NEGATIVES}`")
            continue
        entries.append({"features_dir": str(folder), "sampling_weight": weight,
                        "penalty_weight": 1.0, "truth": False,
                        "truncation_strategy": strategy, "type": "mmap"})
    return entries, problems


def mww_config(engine: DatasetEngine, *, into: Path | None = None,
               positive: Path | None = None) -> MwwConfig:
    """The `features` entries merged into `into` (its other keys, its own entries and its
    comments kept; entries under the datasets folder are easy-oww's and written anew) or into
    a new document. Nothing is written: the caller writes `text`."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq  # the round-trip YAML

    entries, problems = feature_entries(engine, positive)
    if into is not None:
        config = load_yaml(into)
    else:
        config = CommentedMap()
        config.yaml_set_start_comment(
            f"microWakeWord training parameters: the features easy-oww downloaded into "
            f"{engine.datasets_dir}.\nMerge them into your training_parameters.yaml (or run "
            "`easy-oww mww-config --into training_parameters.yaml`).")
    features = config.get("features")
    if features is not None and not isinstance(features, list):
        raise BadInputError(f"--into {into}: its `features` is not a list; fix it or choose "
                            "another file")
    if features is None:
        features = CommentedSeq()
        put(config, "features", features)
    ours = {str(e["features_dir"]) for e in entries}
    for index in reversed(range(len(features))):
        item = features[index]
        where = item.get("features_dir") if isinstance(item, dict) else None
        if where is not None and (inside(where, engine.datasets_dir) or str(where) in ours):
            del features[index]
    for entry in entries:
        features.append(CommentedMap(entry))
    stream = io.StringIO()
    round_trip_yaml().dump(config, stream)
    return MwwConfig(text=stream.getvalue(), features=plain(list(features)),
                     problems=problems)
