"""Round-trip YAML for the trainers' configs: a user's file read and written back with its
keys, order, comments and quotes as they were (ruamel.yaml), and the small edits both
``oww-config`` and ``mww-config`` make to it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from easy_oww.errors import BadInputError


def load_yaml(path: Path) -> Any:
    from ruamel.yaml.error import YAMLError  # see round_trip_yaml

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInputError(f"--into {path}: no such file; write a new one with --output "
                            "instead") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInputError(f"--into {path}: cannot be read ({exc})") from None
    try:
        data = round_trip_yaml().load(text)
    except YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise BadInputError(f"--into {path}: not valid YAML{line} ({problem}); fix it or "
                            "choose another file") from None
    if data is None:
        from ruamel.yaml.comments import CommentedMap  # see round_trip_yaml

        return CommentedMap()
    if not isinstance(data, dict):
        raise BadInputError(f"--into {path}: holds a YAML {type(data).__name__}, not the "
                            "mapping of settings openWakeWord's train.py reads")
    return data


def round_trip_yaml() -> Any:
    from ruamel.yaml import YAML  # loaded only when a config is written

    yaml = YAML()  # round trip: keys, order, comments and quotes stay as the user wrote them
    yaml.preserve_quotes = True
    yaml.width = 4096  # a long path stays on its line
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def inside(path: object, root: Path) -> bool:
    try:
        return Path(str(path)).expanduser().absolute().is_relative_to(root)
    except (TypeError, ValueError):
        return False


def put(mapping: Any, key: str, value: Any) -> None:
    """Set `key` where it stands (or at the end), written the same way every run: replaced in
    place, ruamel keeps the old value's quotes on the first run and not the next."""
    if key in mapping:
        position = list(mapping).index(key)
        del mapping[key]
        mapping.insert(position, key, value)
    else:
        mapping[key] = value


def plain(value: Any) -> Any:
    """ruamel's commented containers as plain lists and dicts (for JSON and the checks)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value
