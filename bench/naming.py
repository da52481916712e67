"""Default run names that follow the run: ``${run_name:EXPERIMENT,DATASET,SPLIT}``.

A run's ``name`` picks its folder (``reports/<name>/<run>/``), its MLflow tags and run
name, and what "the latest run" means for ``bench report NAME``, ``bench compare`` and
``resume=true``. Each experiment (``configs/experiment/*.yaml``) sets

    name: ${run_name:spectrum,movielens_small,temporal_given_n}

— its own name and the dataset and split it is defined on. The resolver returns the
experiment's name when the run uses that dataset and split, and appends the dataset
(``spectrum-ml_100k``) and the split group option (``spectrum-temporal``) when it does
not, so runs on other data never become "the latest spectrum run". ``name=...`` on the
command line replaces the whole thing.

The dataset is named by its config node (:func:`dataset_label`: its ``name`` key, else
the file name of a table, else the loader: ``load_ml_100k`` -> ``ml_100k``). The split is
named by its group option, which only Hydra knows: under ``bench`` (a Hydra app) and in
configs composed with the ``hydra`` node; a config composed without it (the Python API)
compares the dataset only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import PurePath

from omegaconf import DictConfig, OmegaConf

__all__ = ["RESOLVER", "dataset_label", "register_resolver", "run_name"]

#: the resolver's name in config files
RESOLVER = "run_name"
#: loader-name prefixes dropped from a dataset label
_PREFIXES = ("load_", "generate_", "read_")


def dataset_label(node) -> str | None:
    """A short, file-name-safe name of the dataset a config node loads, or ``None``."""
    if not isinstance(node, Mapping | DictConfig):
        return None
    name = _value(node, "name")
    if not name:
        path = _value(node, "path")
        if path and PurePath(str(path)).suffix:
            name = PurePath(str(path)).name.split(".")[0]
    if not name:
        target = str(_value(node, "_target_") or "")
        name = target.rpartition(".")[2]
        for prefix in _PREFIXES:
            if name.startswith(prefix):
                name = name[len(prefix):]
                break
    label = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name or "")).strip("._-")
    return label or None


def run_name(experiment: str, dataset: str, split: str, *, _root_=None) -> str:
    """``experiment``, plus ``-<dataset>`` and ``-<split>`` where the run differs from them."""
    parts = [str(experiment)]
    data = dataset_label(_root_.get("dataset")) if _root_ is not None else None
    if data and data != str(dataset):
        parts.append(data)
    chosen = _split_choice(_root_)
    if chosen and chosen != str(split):
        parts.append(chosen.replace("/", "_"))
    return "-".join(parts)


def register_resolver() -> None:
    """Make ``${run_name:...}`` available to every config composed in this process."""
    if not OmegaConf.has_resolver(RESOLVER):
        OmegaConf.register_new_resolver(RESOLVER, run_name)


def _split_choice(root) -> str | None:
    """The split group option of this run: from the config's own ``hydra`` node, else from
    the Hydra app running now; ``None`` when neither is there."""
    if root is not None and "hydra" in root:
        choice = OmegaConf.select(root, "hydra.runtime.choices.split", default=None)
        if choice is not None:
            return str(choice)
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        choice = OmegaConf.select(HydraConfig.get(), "runtime.choices.split", default=None)
        return None if choice is None else str(choice)
    return None


def _value(node, key: str):
    """``node[key]``, or ``None`` when absent or still ``???``."""
    if isinstance(node, DictConfig):
        if key not in node or OmegaConf.is_missing(node, key):
            return None
        return node[key]
    value = node.get(key)
    return None if value == "???" else value
