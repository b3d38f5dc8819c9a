"""LLaMA-Factory's dataset registry for the built manifests: a `dataset_info.json` in each manifest folder.

LLaMA-Factory trains on a dataset named in `<dataset_dir>/dataset_info.json` and looks relative media paths
up under `media_dir`, which defaults to `dataset_dir`. A manifest's audio paths are relative to the
manifest's own folder, so every folder the build writes manifests into (`<out>/<split>/`, `<out>/abilities/`)
gets a `dataset_info.json` with one entry per manifest written there, named as the manifest:

    "acc": {"file_name": "acc.jsonl", "formatting": "sharegpt",
            "columns": {"messages": "messages", "audios": "audios"},
            "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user",
                     "assistant_tag": "assistant", "system_tag": "system"}}

Without it LLaMA-Factory reads the alpaca layout, or for sharegpt a `conversations` column with
`from`/`value` and `human`/`gpt`. Train with `dataset_dir: data/acc-audiocaps/train` and `dataset: acc` (or
`ac,acc`). File names are relative, so the folder can be moved as a whole; entries are sorted by name, so the
same build writes the same bytes; each file is written atomically.
"""

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auralign.fileio import atomic_write_text

if TYPE_CHECKING:
    from auralign.data.build import BuildConfig

DATASET_INFO = "dataset_info.json"
ABILITIES = "abilities"  # the folder `build.write_ability_manifests` writes into


def dataset_entry(file_name: str) -> dict[str, Any]:
    """The LLaMA-Factory entry of one manifest (`file_name` relative to the dataset_info.json's folder)."""
    return {
        "file_name": file_name,
        "formatting": "sharegpt",
        "columns": {"messages": "messages", "audios": "audios"},
        "tags": {
            "role_tag": "role",
            "content_tag": "content",
            "user_tag": "user",
            "assistant_tag": "assistant",
            "system_tag": "system",
        },
    }


def write_dataset_info(folder: Path, names: Iterable[str]) -> Path:
    """`folder/dataset_info.json` with one entry per manifest `folder/<name>.jsonl`."""
    entries = {name: dataset_entry(f"{name}.jsonl") for name in sorted(set(names))}
    path = folder / DATASET_INFO
    atomic_write_text(path, json.dumps(entries, indent=2) + "\n")
    return path


def written_manifests(config: "BuildConfig", summary: Mapping[str, Any]) -> dict[Path, list[str]]:
    """The manifests a build's merge wrote, by folder, read from its summary."""
    by_folder: dict[Path, list[str]] = {}
    for split, info in summary.get("splits", {}).items():
        by_folder.setdefault(config.out_dir / split, []).extend(info["samples"])
    for name in summary.get("mixes", {}):
        by_folder.setdefault(config.out_dir / config.mixes[name].split, []).append(name)
    if summary.get("abilities"):
        by_folder[config.out_dir / ABILITIES] = list(summary["abilities"])
    return by_folder


def write_build_dataset_infos(config: "BuildConfig", summary: Mapping[str, Any]) -> list[Path]:
    """A `dataset_info.json` beside the manifests of each folder the build wrote into."""
    return [write_dataset_info(folder, names) for folder, names in written_manifests(config, summary).items()]
