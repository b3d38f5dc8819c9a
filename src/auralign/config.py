"""YAML configs validated into pydantic models; every error names its source: the file and the key, or the
command-line override that caused it.

Every verb that reads a config takes `--set KEY=VALUE` (repeatable) through `add_set_option`: KEY is dotted for
nested sections (`--set data.manifest=/data/as.jsonl`), VALUE is read as YAML (`--set epochs=2` is an int,
`--set 'betas=[0.9, 0.95]'` a list, `--set output=` null). Overrides apply to the file's mapping before
validation, in order, so the last one for a key wins; a problem they cause is reported as `--set KEY: ...`.

A config file that names a key twice in one mapping is refused (YAML itself would let the last one win,
silently), naming the key and both lines.
"""

import argparse
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from auralign.errors import ConfigError

Model = TypeVar("Model", bound=BaseModel)


class StrictModel(BaseModel):
    """Base for config sections: unknown keys are errors, not silently ignored typos."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def read_yaml(path: str | os.PathLike) -> Any:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        text = path.read_text(encoding="utf-8")
        _refuse_duplicate_keys(path, yaml.compose(text, Loader=yaml.SafeLoader))
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}{_yaml_position(exc)}: malformed YAML: {_yaml_problem(exc)}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a UTF-8 text file") from None


def _refuse_duplicate_keys(path: Path, node: yaml.Node | None, where: str = "") -> None:
    """ConfigError naming a key given twice in one mapping of the composed document, with both lines."""
    if isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _refuse_duplicate_keys(path, item, f"{where}[{i}]")
    if not isinstance(node, yaml.MappingNode):
        return
    first: dict[tuple[str, str], int] = {}
    for key, value in node.value:
        if not isinstance(key, yaml.ScalarNode) or key.tag == "tag:yaml.org,2002:merge":
            continue
        dotted = f"{where}.{key.value}" if where else key.value
        line = key.start_mark.line + 1
        if (key.tag, key.value) in first:
            raise ConfigError(
                f"{path}: key {dotted!r} given twice (lines {first[key.tag, key.value]} and {line}); keep one"
            )
        first[key.tag, key.value] = line
        _refuse_duplicate_keys(path, value, dotted)


def validate(data: Any, model: type[Model], source: str = "<config>", set_keys: Sequence[str] = ()) -> Model:
    """Validate a mapping into `model`; the error lists each bad key as a dotted path, under `source`, or as
    `--set KEY` when it lies in a key that `set_keys` (the overridden dotted keys) replaced."""
    data = _mapping(data, source)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        from_file, from_set = [], []
        for err in exc.errors():
            key = ".".join(str(part) for part in err["loc"]) or "<top level>"
            message = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
            option = _override_of(key, set_keys)
            if option is None:
                from_file.append(f"  {key}: {message}")
            else:
                from_set.append(
                    f"--set {option}: {message}" if key == option else f"--set {option}: {key}: {message}"
                )
        lines = [*from_set, *([f"{source}: invalid config", *from_file] if from_file else [])]
        raise ConfigError("\n".join(lines)) from None


def load_config(
    path: str | os.PathLike | None,
    model: type[Model],
    overrides: Sequence[str] = (),
    *,
    under: Mapping[str, Any] | None = None,
    source: str | None = None,
) -> Model:
    """Read the YAML file at `path` (None: the model's defaults, for verbs whose config file is optional),
    deep-merged over `under` (e.g. a named preset's keys), apply `--set` overrides ("KEY=VALUE" strings),
    validate into `model`; `source` names the config in errors (default: the file)."""
    source = source or ("the built-in defaults" if path is None else str(path))
    data = {} if path is None else _mapping(read_yaml(path), source)
    data = apply_overrides(deep_merge(under or {}, data), overrides)
    return validate(data, model, source=source, set_keys=[item.partition("=")[0] for item in overrides])


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """`override` over `base`: mappings merge key by key, anything else (lists included) is replaced."""
    merged = dict(base)
    for key, value in override.items():
        below = merged.get(key)
        both = isinstance(below, Mapping) and isinstance(value, Mapping)
        merged[key] = deep_merge(below, value) if both else value
    return merged


def positive_int(text: str) -> int:
    """argparse type for counts and sizes (batch size, audios per sample): a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_set_option(parser: argparse.ArgumentParser) -> None:
    """Give a config-reading verb `--set KEY=VALUE`; the handler passes `args.overrides` to `load_config`."""
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, dotted for nested ones (value in YAML), e.g. --set seed=1; repeatable",
    )


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """A copy of `data` with each "a.b.c=value" applied (value parsed as YAML); sections on the way are copied
    or created, never modified in place."""
    data = dict(data)
    for item in overrides:
        key, sep, text = item.partition("=")
        parts = key.split(".")
        if not sep or not all(parts):
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, KEY dotted for nested sections")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"--set {key}: value {text!r} is not YAML: {_yaml_problem(exc)}") from None
        node = data
        for depth, part in enumerate(parts[:-1], start=1):
            child = node.get(part, {})
            if not isinstance(child, dict):
                section = ".".join(parts[:depth])
                raise ConfigError(f"--set {key}: {section} is a value ({child!r}), not a section of keys")
            node[part] = dict(child)
            node = node[part]
        node[parts[-1]] = value
    return data


def _mapping(data: Any, source: str) -> dict[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of keys at the top level, got {type(data).__name__}")
    return data


def _override_of(key: str, set_keys: Sequence[str]) -> str | None:
    """The last overridden key that `key` lies in (or that lies in `key`), if any."""
    for option in reversed(set_keys):
        if key == option or key.startswith(option + ".") or option.startswith(key + "."):
            return option
    return None


def _yaml_position(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    return f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""


def _yaml_problem(exc: yaml.YAMLError) -> str:
    return getattr(exc, "problem", None) or str(exc)
