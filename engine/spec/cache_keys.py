"""Cache keys: every stored fit and trial is keyed on everything that produced it.

A generator fit depends on the dataset's identity (name, file content, target), the fold
(protocol, seed, outer folds, fold index, n_train, val_fraction, max_test_rows, and the
imbalance where one is set), the generator, its options and the number of rows drawn. A
trial depends on its fit, the model, the fine-tuning and preprocessing settings, the fold and
its grid point. Keys are SHA-256 digests of a canonical
JSON form of those inputs; the inputs themselves are stored beside the result so that a changed
setting can be named when something is recomputed.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

KEY_VERSION = 1  # bump when the meaning of stored results changes


def digest(inputs: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of ``inputs``."""
    text = json.dumps(inputs, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


@lru_cache(maxsize=256)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    """Content hash of a file (cached per path, size and modification time)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_sha256(path: str | Path) -> str:
    st = os.stat(path)
    return _file_sha256(str(path), st.st_size, st.st_mtime_ns)


def source_files(name: str, data_dir: str | None) -> list[Path]:
    """The files a registry dataset's rows (and task splits) are read from, where known:
    the mirror's table, else the cache's, for ``tabarena/`` and ``openml/`` names."""
    from engine.data.tabarena import cache_dir, find_table, mirror_dir
    from engine.data.tabarena_splits import splits_path

    kind, _, base = name.partition("/")
    if kind not in ("tabarena", "openml"):
        return _registered_mirror_file(name, data_dir)
    stem = base if kind == "tabarena" else f"openml-{base}"
    mirror = mirror_dir(data_dir) if data_dir else None
    for directory in ([mirror] if mirror is not None else []) + [cache_dir()]:
        table = find_table(directory, stem)
        if table is not None:
            splits = splits_path(directory, stem)
            return [table] + ([splits] if splits.is_file() else [])
    return []


def _registered_mirror_file(name: str, data_dir: str | None) -> list[Path]:
    """The mirror table of a registry dataset that declares one (``mirror_stem``, e.g.
    ``uci/adult``), when a mirror is set and holds it."""
    from engine.data import DATASETS, dataset_names
    from engine.data.tabarena import find_table, mirror_dir

    if name not in dataset_names():
        return []
    stem = getattr(DATASETS.get(name), "mirror_stem", None)
    mirror = mirror_dir(data_dir) if stem else None
    table = find_table(mirror, stem) if mirror is not None else None
    return [table] if table is not None else []


def mirror_file(name: str, data_dir: str | None) -> Path | None:
    """The mirror or cache table a registry dataset is read from, if it is on this machine."""
    files = source_files(name, data_dir)
    return files[0] if files else None


def dataset_identity(dataset: dict[str, Any], data_dir: str | None) -> dict[str, Any]:
    """Name, target and the content hashes of the files the rows come from (if any)."""
    ident: dict[str, Any] = {"name": dataset["name"], "target": dataset.get("target")}
    files = ([Path(dataset["path"])] if dataset.get("path")
             else source_files(dataset["name"], data_dir))
    hashes = [file_sha256(f) for f in files if f.is_file()]
    if hashes:
        ident["file_sha256"] = hashes
    return ident


def fold_inputs(fold: Any) -> dict[str, Any]:
    """What decides a fold's rows (``fold`` is an ``engine.plan.sweep_plan.FoldRef``); the
    imbalance and the shift only where set, so folds without them keep their keys."""
    inputs = {
        "dataset": dataset_identity(fold.dataset, fold.data_dir),
        "split": fold.split, "seed": fold.seed, "outer_folds": fold.outer_folds,
        "fold": fold.fold, "n_train": fold.n_train, "val_fraction": fold.val_fraction,
        "max_test_rows": fold.max_test_rows,
    }
    share = getattr(fold, "minority_share", None)
    if share is not None:
        inputs["imbalance"] = {"minority_share": float(share)}
    shift = getattr(fold, "shift", None)
    if shift is not None:  # likewise: unshifted folds keep their keys
        inputs["shift"] = shift.key()
    return inputs


def generator_params(generator: str, options: dict[str, Any]) -> dict[str, Any]:
    """The generator's effective parameters (options over its defaults), so that a changed
    default is a changed key."""
    return json.loads(_generator_params(generator, json.dumps(options, sort_keys=True)))


@lru_cache(maxsize=1024)
def _generator_params(generator: str, options_json: str) -> str:
    from engine.generators import make_generator

    params = make_generator(generator, **json.loads(options_json)).params
    return json.dumps(params, sort_keys=True, default=str)


def model_identity(model: dict[str, Any]) -> dict[str, Any]:
    """The model spec, the backend's ``VERSION`` where it declares one, and the content hash
    of the weights file it loads, where local."""
    ident = dict(model)
    version = model_version(str(model.get("name")))
    if version is not None:  # absent for backends that never changed (keeps their old keys)
        ident["model_version"] = version
    path = model.get("checkpoint")
    if path is None and model.get("name") == "pfn" and not model.get("random_init"):
        from engine.models.pfn import bundled_checkpoint_path

        path = bundled_checkpoint_path()
    if path is not None:
        files = [Path(path)] if Path(path).is_file() else sorted(
            p for p in Path(path).glob("**/*") if p.is_file())
        ident["weights_sha256"] = [file_sha256(f) for f in files]
        if "checkpoint" in ident:  # the content names the weights, not where they sit
            ident["checkpoint"] = Path(path).name
    return ident


def model_version(name: str) -> int | None:
    """A model backend's ``VERSION``: bumped when the same options and weights predict or
    fine-tune differently."""
    from engine.models import model_names
    from engine.models.base import MODELS

    if name not in model_names():
        return None
    version = getattr(MODELS.get(name), "VERSION", None)
    return None if version is None else int(version)


def fit_inputs(generator: str, options: dict[str, Any], fold: Any, n_samples: int,
               ) -> dict[str, Any]:
    if options.get("class_balance") == "as_train":  # the default: keeps the keys without it
        options = {k: v for k, v in options.items() if k != "class_balance"}
    inputs = {"version": KEY_VERSION, "fold": fold_inputs(fold), "generator": generator,
              "generator_version": generator_version(generator), "options": options,
              "params": generator_params(generator, options), "n_samples": n_samples}
    if generator == "mixed":  # its rows also change when a member plug-in's rows do
        inputs["member_versions"] = member_versions(options)
    return inputs


def member_versions(options: dict[str, Any]) -> dict[str, int]:
    """The ``VERSION`` of each member plug-in of a ``mixed`` generator."""
    from engine.generators import make_generator

    specs = make_generator("mixed", **options).member_specs()
    return {name: generator_version(name) for name, _ in specs}


def model_inputs(generator: str, options: dict[str, Any], fold: Any) -> dict[str, Any]:
    """What decides a fitted generator (the fit's inputs without the rows drawn from it)."""
    inputs = fit_inputs(generator, options, fold, 0)
    inputs.pop("n_samples")
    return inputs


def generator_version(generator: str) -> int:
    """A plug-in's ``VERSION`` (default 1): bumped when the same parameters give other rows."""
    from engine.generators import GENERATORS, generator_names

    generator_names()
    return int(getattr(GENERATORS.get(generator), "VERSION", 1))


def trial_inputs(trial: Any, fold: dict[str, Any], fit_key: str, model: dict[str, Any],
                 ) -> dict[str, Any]:
    """What decides a trial's result (``trial`` is an ``engine.plan.sweep_plan.TrialJob``;
    ``model`` its ``model_identity``)."""
    from dataclasses import asdict

    from engine.spec.finetune_config import key_fields

    return {
        "version": KEY_VERSION, "fold": fold, "method": trial.method, "fit": fit_key,
        "synthetic_scale": trial.synthetic_scale, "mix_ratio": trial.mix_ratio,
        "n_synthetic": trial.n_synthetic, "model": model,
        "finetune": key_fields(trial.finetune), "preprocessing": asdict(trial.preprocessing),
        "device": "cuda" if trial.trial_gpus > 0 else "cpu",
    }


def changed_fields(old: dict[str, Any] | None, new: dict[str, Any], prefix: str = "",
                   ) -> list[str]:
    """Dotted names of the leaves that differ between two input records."""
    if not isinstance(old, dict):
        return [prefix or "<all>"]
    out: list[str] = []
    for key in sorted(set(old) | set(new)):
        name = f"{prefix}.{key}" if prefix else str(key)
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out.extend(changed_fields(a, b, name))
        elif json.dumps(a, sort_keys=True, default=str) != json.dumps(b, sort_keys=True,
                                                                       default=str):
            out.append(name)
    return out
