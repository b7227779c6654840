"""Sweep specification: YAML file -> validated, typed ``SweepSpec``.

Every error names the file, the field (dotted path) and what was expected.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from engine.core.errors import SpecError
from engine.spec.finetune_config import SELECT_BY
from engine.spec.finetune_config import FinetuneConfig as FinetuneSpec
from engine.spec.methods import METHODS
from engine.spec.plugin_options import check_generator_options, check_model_options
from engine.spec.search import SearchSpec, parse_search
from engine.spec.shift_spec import ShiftSpec, parse_shift
from engine.spec.tracking import TrackingSpec, parse_tracking
from engine.spec.yaml_loading import DuplicateKeyError, UniqueKeyLoader, folder_name_problem

TOP_LEVEL_FIELDS = {
    "name", "seed", "storage", "datasets", "folds", "outer_folds", "n_train", "val_fraction",
    "max_test_rows", "methods", "grid", "model", "finetune", "resources", "preprocessing",
    "split", "data_dir", "max_synthetic_rows", "search", "tracking", "imbalance", "shift",
}
MAX_SEED = 2**32 - 1
MAX_COUNT = 2**31 - 1  # bound for every other integer field
DEFAULT_MAX_SYNTHETIC_ROWS = 200_000
SPLIT_PROTOCOLS = ("kfold", "tabarena")
AS_IS = "as_is"  # imbalance.minority_share entry: the dataset's own class proportions


@dataclass(frozen=True)
class DatasetRef:
    """A registry dataset (``path`` is None) or a local CSV/Parquet file with a target column."""

    name: str
    path: str | None = None
    target: str | None = None
    shift: ShiftSpec | None = None  # its out-of-domain test pool (None: no shift)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "path": self.path, "target": self.target}


@dataclass(frozen=True)
class MethodRef:
    """A method to run, with the options passed to its generator; ``label`` names a variant
    (the same method with other options) in trial ids and results."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)
    label: str = ""

    @property
    def shown(self) -> str:
        """The method's name in trial ids, keys and results."""
        return self.label or self.name


@dataclass(frozen=True)
class ResourceSpec:
    """CPUs per generator fit; CPUs and GPUs per fine-tuning trial."""

    generator_cpus: float = 1.0
    trial_cpus: float = 1.0
    trial_gpus: float = 0.0
    max_concurrent_trials: int = 0  # 0: as many as resources allow
    max_concurrent_fits: int = 0  # 0: fit nodes' CPUs, or the CPUs trials leave free


@dataclass(frozen=True)
class PreprocessingSpec:
    """Model-side preprocessing (fitted on training rows only)."""

    max_features: int | None = None  # wider tables are reduced to this many features


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep definition."""

    name: str
    seed: int
    storage: str
    datasets: tuple[DatasetRef, ...]
    folds: tuple[int, ...]
    outer_folds: int
    n_train: int
    val_fraction: float
    max_test_rows: int
    methods: tuple[MethodRef, ...]
    synthetic_scales: tuple[float, ...]
    mix_ratios: tuple[float, ...]
    model: dict[str, Any]
    finetune: FinetuneSpec
    resources: ResourceSpec
    preprocessing: PreprocessingSpec
    split: str = "kfold"  # fold protocol: 'kfold' (seeded stratified) or 'tabarena' (OpenML task)
    data_dir: str | None = None  # mirror directory of <name>.parquet/.csv (no network)
    max_synthetic_rows: int = DEFAULT_MAX_SYNTHETIC_ROWS  # cap on one fit's synthetic table
    search: SearchSpec = field(default_factory=SearchSpec)  # grid, or an Optuna search
    tracking: TrackingSpec | None = None  # MLflow / W&B logging of the trials (no cache input)
    minority_shares: tuple[float | None, ...] = ()  # imbalance.minority_share (None: as_is)
    source: str = "<memory>"

    @property
    def sweep_dir(self) -> Path | str:
        """``<storage>/<name>``: a ``Path``, or a URI when storage is one
        (``engine.storage.fsio``)."""
        from engine.storage.fsio import is_uri, join

        if is_uri(self.storage):
            return join(self.storage, self.name)
        return Path(self.storage).expanduser().resolve() / self.name


# ---------------------------------------------------------------------------- loading
def load_spec(path: str | Path, storage: str | None = None) -> SweepSpec:
    """Read and validate a sweep file; ``storage`` overrides the file's storage field."""
    p = Path(path)
    src = str(path)
    if not p.is_file():
        raise SpecError(src, "<file>", "no such file")
    try:
        raw = yaml.load(p.read_text(), Loader=UniqueKeyLoader)  # noqa: S506 - a SafeLoader
    except DuplicateKeyError as exc:
        raise SpecError(src, exc.key, f"duplicate key (line {exc.line}; first at line "
                        f"{exc.first})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise SpecError(src, "<file>", f"not valid YAML{where}") from None
    except UnicodeDecodeError:
        raise SpecError(src, "<file>", "not a text file") from None
    if storage is not None:
        if not isinstance(raw, dict):
            raise SpecError(src, "<file>", "expected a mapping of fields at the top level")
        raw = {**raw, "storage": storage}
    return parse_spec(raw, source=src, base_dir=p.parent)


def parse_spec(raw: Any, source: str = "<memory>", base_dir: Path | None = None) -> SweepSpec:
    """Validate a parsed YAML document into a ``SweepSpec``."""
    v = _Validator(source)
    if not isinstance(raw, dict):
        raise SpecError(source, "<file>", "expected a mapping of fields at the top level")
    unknown = sorted(set(raw) - TOP_LEVEL_FIELDS)
    if unknown:
        raise SpecError(source, unknown[0], f"unknown field (allowed: {sorted(TOP_LEVEL_FIELDS)})")
    base = base_dir or Path.cwd()

    name = v.string(raw, "name", required=True)
    if not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise SpecError(source, "name", "use letters, digits, '-', '_' and '.' only")
    if problem := folder_name_problem([name], "sweep"):
        raise SpecError(source, "name", problem)
    seed = v.integer(raw, "seed", default=0, minimum=0, maximum=MAX_SEED)
    storage = _storage(v, raw, name)

    data_dir = _data_dir(v, raw, base)
    datasets = _with_shift(v, raw, _datasets(v, raw, base, data_dir))
    split = v.choice(raw, "split", SPLIT_PROTOCOLS, default="kfold")
    outer_folds = v.integer(raw, "outer_folds", default=5, minimum=2)
    if split == "tabarena":
        folds = _folds(v, raw, _tabarena_splits(v, datasets, data_dir), "the tasks' splits")
    else:
        folds = _folds(v, raw, outer_folds)
    n_train = v.integer(raw, "n_train", default=256, minimum=8)
    val_fraction = v.number(raw, "val_fraction", default=0.25, low=0.05, high=0.9)
    max_test_rows = v.integer(raw, "max_test_rows", default=2000, minimum=10)
    shares = _imbalance(v, raw.get("imbalance"), n_train)
    methods = _methods(v, raw)
    scales, mixes = _grid(v, raw)
    cap = v.integer(raw, "max_synthetic_rows", default=DEFAULT_MAX_SYNTHETIC_ROWS, minimum=1)
    search = parse_search(v, raw.get("search"), scales, mixes, "grid" in raw)
    _check_table_cap(v, scales, n_train, cap, search)
    model = _model(v, raw, base)
    finetune = _finetune(v, raw.get("finetune"))
    resources = _resources(v, raw.get("resources"))
    prep = _preprocessing(v, raw.get("preprocessing"))
    return SweepSpec(
        name=name, seed=seed, storage=storage, datasets=datasets, folds=folds,
        outer_folds=outer_folds, n_train=n_train, val_fraction=val_fraction,
        max_test_rows=max_test_rows, methods=methods, synthetic_scales=scales,
        mix_ratios=mixes, model=model, finetune=finetune, resources=resources,
        preprocessing=prep, split=split, data_dir=data_dir, max_synthetic_rows=cap,
        search=search, tracking=parse_tracking(v, raw.get("tracking"), name),
        minority_shares=shares, source=source,
    )


def _storage(v: _Validator, raw: dict, name: str) -> str:
    """The storage folder (absolute) or URI (``s3://``, ``gs://``, ``file://`` ...: anything
    ``pyarrow.fs.FileSystem.from_uri`` reads); refused when the sweep folder could not be
    written (a URI on an object store is probed with a small object written and deleted)."""
    from engine.storage.fsio import is_uri, join, shown
    from engine.storage.store import writable_dir_problem

    storage = v.string(raw, "storage", default="results")
    if is_uri(storage):
        problem = writable_dir_problem(join(storage, name))
        if problem:
            raise SpecError(v.source, "storage", f"cannot write the sweep folder "
                            f"{shown(join(storage, name))}: {problem}")
        return storage
    path = Path(storage).expanduser()
    if not path.is_absolute():
        path = (Path.cwd() / path).resolve()
    problem = writable_dir_problem(path / name)
    if problem:
        raise SpecError(v.source, "storage", f"cannot write the sweep folder {path / name}: "
                        f"{problem}")
    return str(path)


def _imbalance(v: _Validator, raw: Any, n_train: int) -> tuple[float | None, ...]:
    """``imbalance: {minority_share: s | [s, ...]}``: each share in (0, 0.5], giving at least
    2 minority rows of n_train, or ``as_is`` (the dataset's own proportions: the folds of a
    sweep without ``imbalance``, sorted last); () when absent."""
    if raw is None:
        return ()
    where = "imbalance.minority_share"
    if not isinstance(raw, dict) or "minority_share" not in raw:
        raise SpecError(v.source, "imbalance", "expected {minority_share: <share or list>}")
    extra = sorted(set(raw) - {"minority_share"})
    if extra:
        raise SpecError(v.source, f"imbalance.{extra[0]}", "unknown field (minority_share)")
    listed = raw["minority_share"]
    items = listed if isinstance(listed, list) else [listed]
    if not items:
        raise SpecError(v.source, where, f"expected a share or a non-empty list (or '{AS_IS}')")
    shares: list[float] = []
    for i, share in enumerate(items):
        at = f"{where}[{i}]" if isinstance(listed, list) else where
        if share == AS_IS:
            continue
        if isinstance(share, bool) or not isinstance(share, int | float):
            raise SpecError(v.source, at, f"expected a number or '{AS_IS}', got {share!r}")
        if not 0 < share <= 0.5:
            raise SpecError(v.source, at, f"expected a share in (0, 0.5] or '{AS_IS}', "
                            f"got {share:g}")
        if int(round(share * n_train)) < 2:
            raise SpecError(v.source, at, f"share {share:g} x n_train {n_train} gives "
                            f"{int(round(share * n_train))} minority rows; need at least 2")
        shares.append(float(share))
    _distinct_folders(v, where, shares, "minority")
    return (*sorted(set(shares)), *((None,) if AS_IS in items else ()))


def _check_table_cap(v: _Validator, scales: tuple[float, ...], n_train: int, cap: int,
                     search: SearchSpec) -> None:
    """A typo in the grid must not exhaust memory: synthetic rows per fit are capped; and a
    scale must give at least one synthetic row."""
    low = next((d.low for d in search.space if d.name == "synthetic_scale"), None)
    if low is not None and int(round(low * n_train)) < 1:
        raise SpecError(v.source, "search.space.synthetic_scale", f"low {low:g} x n_train "
                        f"{n_train} rounds to 0 synthetic rows; raise it")
    high = search.high("synthetic_scale")
    if high is not None and int(round(high * n_train)) > cap:
        raise SpecError(v.source, "search.space.synthetic_scale", f"high {high:g} x n_train "
                        f"{n_train} = {int(round(high * n_train)):,} synthetic rows per fit, "
                        f"above max_synthetic_rows={cap:,} (raise it if you mean it)")
    for i, s in enumerate(scales):
        rows = int(round(s * n_train))
        if rows < 1:
            raise SpecError(v.source, f"grid.synthetic_scale[{i}]", f"scale {s:g} x n_train "
                            f"{n_train} rounds to 0 synthetic rows; raise it")
        if rows > cap:
            raise SpecError(v.source, f"grid.synthetic_scale[{i}]", f"scale {s:g} x n_train "
                            f"{n_train} = {rows:,} synthetic rows per fit, above "
                            f"max_synthetic_rows={cap:,} (raise it if you mean it)")


def _data_dir(v: _Validator, raw: dict, base: Path) -> str | None:
    """The mirror directory (relative to the sweep file; else ``$CAUSALMIX_DATA``, so that it
    travels with the plan to every node), which must exist."""
    if raw.get("data_dir") is None:
        env = os.environ.get("CAUSALMIX_DATA")
        if not env:
            return None
        full = Path(env).expanduser().resolve()
        if not full.is_dir():
            raise SpecError(v.source, "data_dir", f"$CAUSALMIX_DATA: no such directory: {full}")
        return str(full)
    path = Path(v.string(raw, "data_dir")).expanduser()
    full = path if path.is_absolute() else (base / path).resolve()
    if not full.is_dir():
        raise SpecError(v.source, "data_dir", f"no such directory: {full}")
    return str(full)


def _tabarena_splits(v: _Validator, datasets: tuple[DatasetRef, ...],
                     data_dir: str | None) -> int:
    """``split: tabarena``: every dataset is a TabArena task; returns the fewest splits (the
    fold bound); with a mirror the splits must be in it or in the cache."""
    from engine.data.tabarena import splits_problem
    from engine.data.tabarena_meta import get_task

    bound = None
    for i, ds in enumerate(datasets):
        if ds.path is not None or not ds.name.startswith("tabarena/"):
            raise SpecError(v.source, f"datasets[{i}]", f"split: tabarena needs tabarena/<name> "
                            f"datasets (OpenML task splits); '{ds.name}' has none: use "
                            "split: kfold")
        task = get_task(ds.name)
        bound = task.n_splits if bound is None else min(bound, task.n_splits)
        problem = splits_problem(task, data_dir)
        if problem:
            raise SpecError(v.source, f"datasets[{i}]", problem)
    return int(bound or 1)


# ---------------------------------------------------------------------------- sections
def _dataset_item(v: _Validator, item: Any, where: str, base: Path,
                  data_dir: str | None) -> list[DatasetRef]:
    """One entry of ``datasets``: a name, a suite, a local file, or either with ``shift``."""
    if isinstance(item, dict) and "suite" in item:
        return _suite(v, item, where, data_dir)
    elif isinstance(item, str) and item.startswith("tabarena/"):
        return [_tabarena_ref(v, item, where, data_dir)]
    elif isinstance(item, str):
        from engine.data import dataset_names

        if item.startswith("openml/") and not item.split("/", 1)[1].isdigit():
            raise SpecError(v.source, where, f"'{item}': expected openml/<numeric data id>")
        if item not in dataset_names() and not item.startswith("openml/"):
            known = ", ".join(dataset_names())
            raise SpecError(
                v.source, where, f"unknown dataset '{item}' (known: {known}, "
                "openml/<data id>, or {name, path, target} for a local file)"
            )
        return [DatasetRef(name=item)]
    elif isinstance(item, dict) and "shift" in item:
        rest = {k: val for k, val in item.items() if k != "shift"}
        refs = _dataset_item(v, rest["name"] if set(rest) == {"name"} else rest, where, base,
                             data_dir)
        shift = _shift_or_none(v, item["shift"], f"{where}.shift")
        return [replace(ref, shift=shift) for ref in refs]
    elif isinstance(item, dict):
        extra = sorted(set(item) - {"name", "path", "target"})
        if extra:
            raise SpecError(v.source, f"{where}.{extra[0]}",
                            "unknown field (name, path, target, shift)")
        dname = v.string(item, "name", required=True, where=where)
        path = v.string(item, "path", required=True, where=where)
        target = v.string(item, "target", required=True, where=where)
        full = Path(path).expanduser()
        if not full.is_absolute():
            full = (base / full).resolve()
        if not full.is_file():
            raise SpecError(v.source, f"{where}.path", f"no such file: {full}")
        if full.suffix.lower() not in {".csv", ".parquet", ".pq"}:
            raise SpecError(v.source, f"{where}.path", "expected a .csv or .parquet file")
        _check_target_column(v.source, where, full, target)
        return [DatasetRef(name=dname, path=str(full), target=target)]
    else:
        raise SpecError(v.source, where, "expected a dataset name or {name, path, target}")


def _datasets(v: _Validator, raw: dict, base: Path,
              data_dir: str | None = None) -> tuple[DatasetRef, ...]:
    items = raw.get("datasets")
    if not isinstance(items, list) or not items:
        raise SpecError(v.source, "datasets", "expected a non-empty list")
    out: list[DatasetRef] = []
    for i, item in enumerate(items):
        out.extend(_dataset_item(v, item, f"datasets[{i}]", base, data_dir))
    names = [d.name for d in out]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise SpecError(v.source, "datasets", f"duplicate dataset name {sorted(dup)[0]!r}")
    problem = folder_name_problem(names, "dataset")
    if problem:
        raise SpecError(v.source, "datasets", problem)
    return tuple(out)


def _shift_or_none(v: _Validator, raw: Any, where: str) -> ShiftSpec | None:
    """A dataset's own ``shift:`` (``none`` turns the sweep's shift off for it)."""
    if raw == "none":
        return None
    try:
        shift = parse_shift(v, raw)
    except SpecError as exc:  # name the dataset's field, not the top-level one
        raise SpecError(v.source, exc.field.replace("shift", where, 1), exc.problem) from None
    return replace(shift, where=where) if shift is not None else None


def _with_shift(v: _Validator, raw: dict, datasets: tuple[DatasetRef, ...],
                ) -> tuple[DatasetRef, ...]:
    """The top-level ``shift:`` for every dataset without one of its own."""
    shift = parse_shift(v, raw.get("shift"))
    if shift is None:
        return datasets
    own = {_entry_name(item) for item in raw["datasets"]
           if isinstance(item, dict) and "shift" in item}  # theirs, or 'none'
    return tuple(d if d.name in own else replace(d, shift=shift) for d in datasets)


def _entry_name(item: Any) -> str | None:
    return item.get("name") if isinstance(item, dict) else None


def _tabarena_ref(v: _Validator, name: str, where: str, data_dir: str | None) -> DatasetRef:
    """A TabArena name (closest names on a typo); with a mirror, its file must be there."""
    from engine.core.errors import DataError
    from engine.data.tabarena import mirror_problem
    from engine.data.tabarena_meta import get_task

    try:
        problem = mirror_problem(get_task(name), data_dir)
    except DataError as exc:
        raise SpecError(v.source, where, str(exc)) from None
    if problem:
        raise SpecError(v.source, where, problem)
    return DatasetRef(name=name)


def _suite(v: _Validator, item: dict, where: str, data_dir: str | None) -> list[DatasetRef]:
    """``{suite: <name>, in_mirror: bool}``: the suite's datasets (only those in the mirror)."""
    from engine.data.tabarena import find_table
    from engine.data.tabarena_meta import SUITES, suite_tasks

    extra = sorted(set(item) - {"suite", "in_mirror"})
    if extra:
        raise SpecError(v.source, f"{where}.{extra[0]}", "unknown field (suite, in_mirror)")
    suite = v.string(item, "suite", where=where)
    if suite not in SUITES:
        raise SpecError(v.source, f"{where}.suite", f"unknown suite '{suite}' (known: "
                        f"{', '.join(SUITES)})")
    tasks = suite_tasks(suite)
    if item.get("in_mirror", False) is True:
        if data_dir is None:
            raise SpecError(v.source, f"{where}.in_mirror", "needs a mirror: set data_dir or "
                            "$CAUSALMIX_DATA")
        tasks = [t for t in tasks if find_table(Path(data_dir), t.name)]
        if not tasks:
            raise SpecError(v.source, f"{where}.in_mirror", f"the mirror {data_dir} holds no "
                            f"dataset of suite '{suite}' (see  causalmix data check {data_dir})")
    elif item.get("in_mirror", False) is not False:
        raise SpecError(v.source, f"{where}.in_mirror", "expected true or false")
    return [_tabarena_ref(v, t.dataset, where, data_dir) for t in tasks]


def _check_target_column(source: str, where: str, path: Path, target: str) -> None:
    """Read only the header of a local table and check the target column is there."""
    import pandas as pd

    try:
        if path.suffix.lower() in {".parquet", ".pq"}:
            import pyarrow.parquet as pq

            columns = list(pq.read_schema(path).names)
        else:
            columns = list(pd.read_csv(path, nrows=0).columns)
    except Exception as exc:  # noqa: BLE001 - unreadable file becomes one line
        raise SpecError(source, f"{where}.path", f"cannot read {path.name} "
                        f"({type(exc).__name__})") from None
    if target not in columns:
        shown = ", ".join(map(str, columns[:8])) + (", ..." if len(columns) > 8 else "")
        raise SpecError(source, f"{where}.target", f"column '{target}' not in {path.name} "
                        f"(columns: {shown})")


def _folds(v: _Validator, raw: dict, outer_folds: int,
           bound_by: str = "outer_folds") -> tuple[int, ...]:
    val = raw.get("folds", 1)
    if isinstance(val, bool):
        raise SpecError(v.source, "folds", "expected a count or a list of fold indices")
    if isinstance(val, int):
        if not 1 <= val <= outer_folds:
            raise SpecError(v.source, "folds",
                            f"expected 1..{outer_folds} ({bound_by}), got {val}")
        return tuple(range(val))
    if isinstance(val, list) and val and all(isinstance(x, int) and not isinstance(x, bool)
                                             for x in val):
        bad = [x for x in val if not 0 <= x < outer_folds]
        if bad:
            raise SpecError(v.source, "folds", f"fold index {bad[0]} outside 0..{outer_folds - 1}")
        return tuple(sorted(set(val)))
    raise SpecError(v.source, "folds", "expected a count or a non-empty list of fold indices")


def _methods(v: _Validator, raw: dict) -> tuple[MethodRef, ...]:
    items = raw.get("methods")
    if not isinstance(items, list) or not items:
        raise SpecError(v.source, "methods", f"expected a non-empty list of {sorted(METHODS)}")
    out = [_method_item(v, item, f"methods[{i}]") for i, item in enumerate(items)]
    names = [m.shown for m in out]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise SpecError(v.source, "methods", f"method {sorted(dup)[0]!r} listed twice (give a "
                        "variant its own label)")
    return tuple(out)


def _method_item(v: _Validator, item: Any, where: str) -> MethodRef:
    """One ``methods`` entry: a name, or ``{name, options, label}``."""
    label = ""
    if isinstance(item, str):
        mname, options = item, {}
    elif isinstance(item, dict) and "name" in item:
        extra = sorted(set(item) - {"name", "options", "label"})
        if extra:
            raise SpecError(v.source, f"{where}.{extra[0]}",
                            "unknown field (name, options, label)")
        mname, options = item["name"], item.get("options") or {}
        if not isinstance(options, dict):
            raise SpecError(v.source, f"{where}.options", "expected a mapping")
        label = item.get("label") or ""
        if label and (not isinstance(label, str) or not re.fullmatch(r"[a-z][a-z0-9_]*", label)
                      or label in METHODS):
            raise SpecError(v.source, f"{where}.label", "expected a new lowercase name "
                            f"([a-z][a-z0-9_]*, not a method's), got {label!r}")
    else:
        raise SpecError(v.source, where, "expected a method name or {name, options, label}")
    if mname not in METHODS:
        raise SpecError(v.source, where, f"unknown method '{mname}' (known: "
                        f"{', '.join(sorted(METHODS))})")
    if options and METHODS[mname].generator is None:
        raise SpecError(v.source, f"{where}.options", f"method '{mname}' takes no options")
    if METHODS[mname].generator is not None:
        _check_plugin(v, f"{where}.options", lambda g=METHODS[mname].generator, o=options:
                      check_generator_options(g, o))
    return MethodRef(name=str(mname), options=dict(options), label=label)


def _grid(v: _Validator, raw: dict) -> tuple[tuple[float, ...], tuple[float, ...]]:
    grid = raw.get("grid", {})
    if not isinstance(grid, dict):
        raise SpecError(v.source, "grid", "expected {synthetic_scale: [...], mix_ratio: [...]}")
    extra = sorted(set(grid) - {"synthetic_scale", "mix_ratio"})
    if extra:
        raise SpecError(v.source, f"grid.{extra[0]}", "unknown field (synthetic_scale, mix_ratio)")
    scales = v.number_list(grid, "synthetic_scale", default=[1.0], where="grid")
    for i, s in enumerate(scales):
        if s <= 0:
            raise SpecError(v.source, f"grid.synthetic_scale[{i}]", f"expected a positive number, "
                            f"got {s}")
    mixes = v.number_list(grid, "mix_ratio", default=[0.5], where="grid")
    for i, m in enumerate(mixes):
        if not 0 <= m <= 1:
            raise SpecError(v.source, f"grid.mix_ratio[{i}]",
                            f"expected a number in [0, 1], got {m}")
    _distinct_folders(v, "grid.synthetic_scale", scales, "scale")
    _distinct_folders(v, "grid.mix_ratio", mixes, "mix")
    return tuple(sorted(set(scales))), tuple(sorted(set(mixes)))


def _distinct_folders(v: _Validator, where: str, values: list[float], prefix: str) -> None:
    """Grid values name trial folders (``scale<s>_mix<m>``, 6 significant digits): two that
    print alike would share one trial folder."""
    from engine.storage.store import fmt_num

    seen: dict[str, float] = {}
    for x in sorted(set(values)):
        other = seen.setdefault(fmt_num(x), x)
        if other != x:
            raise SpecError(v.source, where, f"{other!r} and {x!r} share the trial folder "
                            f"'{prefix}{fmt_num(x)}' (6 significant digits); keep one")


def _model(v: _Validator, raw: dict, base: Path) -> dict[str, Any]:
    model = raw.get("model", {"name": "pfn"})
    if isinstance(model, str):
        model = {"name": model}
    if not isinstance(model, dict) or not isinstance(model.get("name", "pfn"), str):
        raise SpecError(v.source, "model", "expected {name: <model>, ...options}")
    model = {"name": "pfn", **model}
    from engine.models import model_names

    if model["name"] not in model_names():
        raise SpecError(v.source, "model.name", f"unknown model '{model['name']}' (known: "
                        f"{', '.join(model_names())})")
    options = {k: val for k, val in model.items() if k != "name"}
    _check_plugin(v, "model", lambda: check_model_options(model["name"], options))
    ckpt = options.get("checkpoint")
    if isinstance(ckpt, str) and ckpt:  # a relative path is read from the sweep file's folder
        full = Path(ckpt).expanduser()
        full = full if full.is_absolute() else (base / full).resolve()
        if not full.exists():
            raise SpecError(v.source, "model.checkpoint", f"no such file or directory: {full}")
        model["checkpoint"] = str(full)
    return model


def _finetune(v: _Validator, raw: Any) -> FinetuneSpec:
    raw = _section(v, raw, "finetune", FinetuneSpec)
    d = FinetuneSpec()
    return FinetuneSpec(
        steps=v.integer(raw, "steps", default=d.steps, minimum=0, where="finetune"),
        lr=v.number(raw, "lr", default=d.lr, low=0.0, high=1.0, where="finetune"),
        weight_decay=v.number(raw, "weight_decay", default=d.weight_decay, low=0.0, high=10.0,
                              where="finetune"),
        patience=v.integer(raw, "patience", default=d.patience, minimum=1, where="finetune"),
        eval_every=v.integer(raw, "eval_every", default=d.eval_every, minimum=1, where="finetune"),
        episode_rows=v.integer(raw, "episode_rows", default=d.episode_rows, minimum=4,
                               where="finetune"),
        query_fraction=v.number(raw, "query_fraction", default=d.query_fraction, low=0.05,
                                high=0.95, where="finetune"),
        grad_clip=v.number(raw, "grad_clip", default=d.grad_clip, low=0.0, high=1e6,
                           where="finetune"),
        l2sp=v.number(raw, "l2sp", default=d.l2sp, low=0.0, high=1e6, where="finetune"),
        permute=v.boolean(raw, "permute", default=d.permute, where="finetune"),
        select_by=v.choice(raw, "select_by", SELECT_BY, default=d.select_by,
                           where="finetune"),
        min_delta=v.number(raw, "min_delta", default=d.min_delta, low=0.0, high=1.0,
                           where="finetune"),
        wise=v.number(raw, "wise", default=d.wise, low=0.0, high=1.0, where="finetune"),
    )


def _resources(v: _Validator, raw: Any) -> ResourceSpec:
    raw = _section(v, raw, "resources", ResourceSpec)
    d = ResourceSpec()
    return ResourceSpec(
        generator_cpus=v.number(raw, "generator_cpus", default=d.generator_cpus, low=0.01,
                                high=1024, where="resources"),
        trial_cpus=v.number(raw, "trial_cpus", default=d.trial_cpus, low=0.01, high=1024,
                            where="resources"),
        trial_gpus=v.number(raw, "trial_gpus", default=d.trial_gpus, low=0.0, high=64,
                            where="resources"),
        max_concurrent_trials=v.integer(raw, "max_concurrent_trials",
                                        default=d.max_concurrent_trials, minimum=0,
                                        where="resources"),
        max_concurrent_fits=v.integer(raw, "max_concurrent_fits",
                                      default=d.max_concurrent_fits, minimum=0,
                                      where="resources"),
    )


def _preprocessing(v: _Validator, raw: Any) -> PreprocessingSpec:
    raw = _section(v, raw, "preprocessing", PreprocessingSpec)
    mf = raw.get("max_features")
    if mf is not None:
        mf = v.integer(raw, "max_features", minimum=1, where="preprocessing")
    return PreprocessingSpec(max_features=mf)


def _check_plugin(v: _Validator, where: str, check: Any) -> None:
    """Run a plug-in option check; its one-line error becomes a SpecError at ``where``."""
    from engine.core.errors import CausalMixError

    try:
        check()
    except CausalMixError as exc:
        option = getattr(exc, "option", None)  # an OptionError names the option
        raise SpecError(v.source, f"{where}.{option}" if option else where, str(exc)) from None


def _section(v: _Validator, raw: Any, name: str, cls: type) -> dict:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise SpecError(v.source, name, "expected a mapping")
    allowed = set(cls.__dataclass_fields__)
    extra = sorted(set(raw) - allowed)
    if extra:
        raise SpecError(v.source, f"{name}.{extra[0]}",
                        f"unknown field (allowed: {sorted(allowed)})")
    return raw


class _Validator:
    """Typed field readers that raise ``SpecError`` naming the field."""

    def __init__(self, source: str) -> None:
        self.source = source

    def _key(self, where: str, key: str) -> str:
        return f"{where}.{key}" if where else key

    def string(self, d: dict, key: str, default: str | None = None, required: bool = False,
               where: str = "") -> str:
        if key not in d or d[key] is None:
            if required:
                raise SpecError(self.source, self._key(where, key), "required, expected a string")
            return str(default)
        val = d[key]
        if not isinstance(val, str) or not val.strip():
            raise SpecError(self.source, self._key(where, key), f"expected a string, got {val!r}")
        return val.strip()

    def boolean(self, d: dict, key: str, default: bool = False, where: str = "") -> bool:
        val = d.get(key, default)
        if not isinstance(val, bool):
            raise SpecError(self.source, self._key(where, key), f"expected true or false, got "
                            f"{val!r}")
        return val

    def choice(self, d: dict, key: str, options: tuple[str, ...], default: str,
               where: str = "") -> str:
        val = self.string(d, key, default=default, where=where)
        if val not in options:
            raise SpecError(self.source, self._key(where, key), f"expected one of "
                            f"{list(options)}, got {val!r}")
        return val

    def integer(self, d: dict, key: str, default: int = 0, minimum: int | None = None,
                where: str = "", maximum: int = MAX_COUNT) -> int:
        val = d.get(key, default)
        if isinstance(val, bool) or not isinstance(val, int):
            raise SpecError(self.source, self._key(where, key), f"expected an integer, got {val!r}")
        if minimum is not None and val < minimum:
            raise SpecError(self.source, self._key(where, key), f"expected an integer >= {minimum},"
                            f" got {val}")
        if val > maximum:
            raise SpecError(self.source, self._key(where, key), f"expected an integer <= "
                            f"{maximum}, got {val}")
        return int(val)

    def number(self, d: dict, key: str, default: float = 0.0, low: float | None = None,
               high: float | None = None, where: str = "") -> float:
        val = d.get(key, default)
        if isinstance(val, str):
            try:
                val = float(val)
            except ValueError:
                pass
        if isinstance(val, bool) or not isinstance(val, int | float) or not math.isfinite(val):
            raise SpecError(self.source, self._key(where, key), f"expected a number, got {val!r}")
        if (low is not None and val < low) or (high is not None and val > high):
            raise SpecError(self.source, self._key(where, key), f"expected a number in "
                            f"[{low}, {high}], got {val}")
        return float(val)

    def number_list(self, d: dict, key: str, default: list[float], where: str = "") -> list[float]:
        val = d.get(key, default)
        if isinstance(val, int | float) and not isinstance(val, bool):
            val = [val]
        if not isinstance(val, list) or not val:
            raise SpecError(self.source, self._key(where, key), "expected a non-empty list of "
                            "numbers")
        out = []
        for i, x in enumerate(val):
            if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
                raise SpecError(self.source, f"{self._key(where, key)}[{i}]", f"expected a number,"
                                f" got {x!r}")
            out.append(float(x))
        return out
