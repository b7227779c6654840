"""TabArena-v0.1 suite metadata, mirrors, the cache, the `tabarena` split protocol and the data
commands; an end-to-end sweep over shared CSVs through CAUSALMIX_DATA with the network blocked.

Tests marked `shared` read ../shared/datasets (TabArena CSVs, target last); they are skipped
with a reason when that folder is absent. Nothing here reaches the network: cache entries are
written the way `causalmix data fetch` writes them (``write_entry``), from local data.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import StratifiedKFold

from engine.cli import main
from engine.core.errors import CausalMixError, DataError, SpecError
from engine.data import load_dataset
from engine.data.tabarena import cache_dir, load_task_splits
from engine.data.tabarena_meta import MITRA, STUDY, SUITE, get_task, suite_tasks, tabarena_tasks
from engine.data.tabarena_splits import TaskSplits, label_fingerprint, write_entry
from engine.folds.fold_data import _cached_dataset, load_fold
from engine.plan.sweep_plan import make_plan
from engine.spec.sweep_file import load_spec, parse_spec
from tests.conftest import SHARED_DATASETS, small_spec

shared = pytest.mark.skipif(not SHARED_DATASETS.is_dir(),
                            reason=f"{SHARED_DATASETS} (TabArena CSV copies) is absent")
SHARED_FILES = 15


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch, tmp_path):
    """An empty private cache, no mirror, and no dataset cached in this process."""
    monkeypatch.setenv("CAUSALMIX_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("CAUSALMIX_DATA", raising=False)
    _cached_dataset.cache_clear()
    yield
    _cached_dataset.cache_clear()


@pytest.fixture
def no_network(monkeypatch):
    """Any connection beyond this machine fails (loopback and local sockets still work)."""
    real_connect = socket.socket.connect
    local = {"127.0.0.1", "::1", "localhost"}
    try:
        local.add(socket.gethostbyname(socket.gethostname()))
    except OSError:
        pass

    def guarded(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in local:
            raise OSError(f"network blocked by the test: {address}")
        return real_connect(self, address)

    def no_dns(host, *args, **kwargs):
        raise socket.gaierror(f"network blocked by the test: {host}")

    monkeypatch.setattr(socket.socket, "connect", guarded)
    real_getaddrinfo = socket.getaddrinfo
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, *a, **k: (
        real_getaddrinfo(host, *a, **k) if host in local or host is None else no_dns(host)))


# ---------------------------------------------------------------------------- metadata
def test_suite_metadata_is_complete_and_consistent():
    tasks = tabarena_tasks()
    assert len(tasks) == 38
    assert len({t.name for t in tasks}) == len({t.task_id for t in tasks}) == 38
    assert len({t.dataset_id for t in tasks}) == 38
    assert all(t.classes >= 2 and t.rows > 0 and t.features > 0 and t.target for t in tasks)
    assert all(t.folds == 3 and t.openml_repeats == 10 and t.n_splits == 30 for t in tasks)
    assert {t.tabarena_repeats for t in tasks} == {3, 10}
    # features exclude the target (OpenML's NumberOfFeatures counts it)
    blood, diabetes = get_task("blood-transfusion-service-center"), get_task("tabarena/diabetes")
    assert (blood.features, blood.task_id, blood.target) == (4, 363621, "DonatedBloodInMarch2007")
    assert (diabetes.features, diabetes.dataset_id) == (8, 46921)
    for t in tasks:
        fits = t.max_train_rows <= 10_000 and t.features <= 500 and t.classes <= 10
        assert t.mitra_compatible == fits, t.name
        assert abs(t.max_train_rows - t.rows * 2 / 3) <= max(2, 0.01 * t.rows), t.name


def test_suites_and_the_study_rule():
    assert len(suite_tasks(SUITE)) == 38
    assert len(suite_tasks(MITRA)) == 26
    study = suite_tasks(STUDY)
    assert len(study) == 33 and all(t.rows <= 50_000 for t in study)
    left_out = {t.name for t in tabarena_tasks()} - {t.name for t in study}
    assert left_out == {"APSFailure", "customer_satisfaction_in_airline", "Diabetes130US",
                        "GiveMeSomeCredit", "SDSS17"}
    assert {"Bioresponse", "hiva_agnostic"} <= {t.name for t in study}


def test_paper_sweep_is_the_study(capsys):
    repo = Path(__file__).resolve().parents[1]
    spec = load_spec(repo / "sweeps/paper.yaml")
    assert [d.name for d in spec.datasets] == [t.dataset for t in suite_tasks(STUDY)]
    assert spec.split == "tabarena" and spec.folds == tuple(range(10))
    assert main(["validate", str(repo / "sweeps/paper.yaml")]) == 0
    out = capsys.readouterr().out
    assert '"trials": 2310' in out and out.count(": 330") == 7


def test_unknown_name_gets_the_closest_names(tmp_path, capsys):
    with pytest.raises(DataError, match=r"'tabarena/hleoc'; closest: tabarena/heloc"):
        load_dataset("tabarena/hleoc")
    with pytest.raises(SpecError, match=r"datasets\[0\].*closest: tabarena/credit-g"):
        parse_spec(small_spec(tmp_path, datasets=["tabarena/credit_g"]))
    assert main(["data", "fetch", "Diabetes"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "tabarena/diabetes" in err


# ---------------------------------------------------------------------------- mirrors
@shared
def test_mirror_loads_tabarena_names_with_the_target_last(monkeypatch, no_network):
    ds = load_dataset("tabarena/diabetes", data_dir=str(SHARED_DATASETS))
    assert ds.name == "tabarena/diabetes" and ds.X.shape == (768, 8) and ds.n_classes == 2
    assert "Outcome" not in ds.X.columns  # the last column is the target
    monkeypatch.setenv("CAUSALMIX_DATA", str(SHARED_DATASETS))
    heloc = load_dataset("tabarena/heloc")  # the metadata's target column is used when present
    assert heloc.X.shape == (10459, 23) and "RiskPerformance" not in heloc.X.columns
    assert not cache_dir().exists()  # a mirror never fills the cache


def test_mirror_problems_are_one_line(tmp_path, no_network):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    with pytest.raises(DataError) as exc:
        load_dataset("tabarena/credit-g", data_dir=str(mirror))
    assert "credit-g.parquet or credit-g.csv" in str(exc.value)
    assert f"causalmix data fetch credit-g --dir {mirror}" in str(exc.value)
    rng = np.random.default_rng(0)
    pd.DataFrame({"a": rng.normal(size=50), "id": np.arange(50)}).to_csv(
        mirror / "credit-g.csv", index=False)
    with pytest.raises(DataError, match=r"last column 'id' \(no column 'good_or_bad_customer'\) "
                       r"has 50 classes against TabArena's 2"):
        load_dataset("tabarena/credit-g", data_dir=str(mirror))
    pd.DataFrame({"a": rng.normal(size=30), "RiskLevel": ["a", "b"] * 15}).to_csv(
        mirror / "maternal_health_risk.csv", index=False)
    with pytest.raises(DataError, match=r"the target has 2 classes against TabArena's 3"):
        load_dataset("tabarena/maternal_health_risk", data_dir=str(mirror))
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize("openml_installed", [True, False])
def test_offline_without_mirror_or_cache_says_how_to_make_a_mirror(openml_installed,
                                                                   monkeypatch, no_network):
    if openml_installed:
        pytest.importorskip("openml", reason="the 'openml' extra is not installed")
    else:
        monkeypatch.setitem(sys.modules, "openml", None)  # import fails as if not installed
    with pytest.raises(CausalMixError) as exc:
        load_dataset("tabarena/jm1")
    msg = str(exc.value)
    assert "\n" not in msg and "CAUSALMIX_DATA=DIR" in msg and "mirror" in msg
    assert "jm1.csv with the target last" in msg and "causalmix data fetch jm1 --dir DIR" in msg
    leftovers = [p for p in cache_dir().rglob("*") if p.is_file()] if cache_dir().exists() else []
    assert leftovers == []


@shared
def test_data_check_of_the_shared_folder(capsys):
    assert main(["data", "check", str(SHARED_DATASETS)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    by_name = {line.split()[0]: line for line in lines[:-1]}
    suite = {name: line for name, line in by_name.items() if line.split()[1] != "unknown"}
    present = [line for line in suite.values() if line.split()[1] in ("exact", "close")]
    assert len(present) == SHARED_FILES and len(suite) == 38
    # tables beside the suite (UCI Adult) are listed as not belonging to it, never counted
    assert all("is not a TabArena-v0.1" in line for name, line in by_name.items()
               if name not in suite)
    assert "splice.csv has 3,188 rows against TabArena's 3,190" in by_name["splice"]
    assert by_name["churn"].split()[1] == "close" and by_name["diabetes"].split()[1] == "exact"
    assert "12 exact, 3 close, 0 wrong, 23 missing" in lines[-1]


@shared
def test_datasets_command_marks_mirror_availability(capsys, monkeypatch):
    monkeypatch.setenv("CAUSALMIX_DATA", str(SHARED_DATASETS))
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 40 and out[-1].startswith("38 datasets, 15 available offline")
    assert sum(" mirror " in line for line in out[1:-1]) == 15


# ---------------------------------------------------------------------------- tabarena split
def _fetched_entry(directory: Path, name: str = "diabetes") -> pd.DataFrame:
    """Write a cache/mirror entry as `data fetch` does, from local data: breast cancer rows
    (2 classes, like the task) with OpenML-style 10 x 3 stratified folds."""
    task = get_task(name)
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    frame = X.assign(**{task.target: y.map({0: "no", 1: "yes"})})
    fold_of = np.empty((10, len(frame)), dtype=np.int8)
    for r in range(10):
        cv = StratifiedKFold(n_splits=3, shuffle=True, random_state=r)
        for f, (_, test) in enumerate(cv.split(frame, y)):
            fold_of[r, test] = f
    splits = TaskSplits(task.task_id, fold_of, label_fingerprint(frame[task.target]))
    write_entry(directory, task, frame, splits)
    return frame


def test_tabarena_split_is_paired_across_methods_and_follows_the_task(tmp_path, no_network):
    _fetched_entry(cache_dir())
    assert sorted(p.name for p in cache_dir().iterdir()) == ["diabetes.parquet",
                                                             "diabetes.splits.npz"]
    spec = parse_spec(small_spec(tmp_path, datasets=["tabarena/diabetes"], split="tabarena",
                                 folds=[0, 4], methods=["finetune", "causalmixft", "scm",
                                                        "tableaugment"]))
    plan = make_plan(spec)
    splits = load_task_splits(get_task("diabetes"))
    seen: dict[int, tuple] = {}
    for trial in plan.trials:
        fold = load_fold(trial.fold).split
        rows = (tuple(fold.train), tuple(fold.val), tuple(fold.test))
        assert seen.setdefault(trial.fold.fold, rows) == rows, trial.trial_id  # paired
        task_train, task_test = splits.indices(trial.fold.fold // 3, trial.fold.fold % 3)
        assert set(fold.train) | set(fold.val) <= set(task_train)
        assert set(fold.test) <= set(task_test) and len(fold.train) + len(fold.val) == 64
    assert seen[0] != seen[4]
    with pytest.raises(SpecError, match=r"expected 1\.\.30 \(the tasks' splits\), got 31"):
        parse_spec(small_spec(tmp_path, datasets=["tabarena/diabetes"], split="tabarena",
                              folds=31))


def test_tabarena_split_refuses_rows_in_another_order(tmp_path, no_network):
    mirror = tmp_path / "mirror"
    frame = _fetched_entry(cache_dir())  # splits in the cache, a reordered copy in the mirror
    mirror.mkdir()
    frame.sample(frac=1.0, random_state=0).to_csv(mirror / "diabetes.csv", index=False)
    spec = parse_spec(small_spec(tmp_path, datasets=["tabarena/diabetes"], split="tabarena",
                                 data_dir=str(mirror), methods=["finetune"]))
    with pytest.raises(DataError, match="another row order, so the OpenML task's splits do not"):
        load_fold(make_plan(spec).trials[0].fold)
    (cache_dir() / "diabetes.splits.npz").unlink()
    with pytest.raises(SpecError, match=f"causalmix data fetch diabetes --dir {mirror}"):
        parse_spec(small_spec(tmp_path, datasets=["tabarena/diabetes"], split="tabarena",
                              data_dir=str(mirror)))
    with pytest.raises(SpecError, match="'sklearn/wine' has none: use split: kfold"):
        parse_spec(small_spec(tmp_path, datasets=["sklearn/wine"], split="tabarena"))


def test_kfold_split_is_paired_across_methods(tmp_path):
    spec = parse_spec(small_spec(tmp_path, folds=2, methods=["finetune", "causalmixft",
                                                            "tableaugment"]))
    seen: dict[tuple, tuple] = {}
    for trial in make_plan(spec).trials:
        fold = load_fold(trial.fold).split
        key = (trial.fold.dataset["name"], trial.fold.fold)
        rows = (tuple(fold.train), tuple(fold.val), tuple(fold.test))
        assert seen.setdefault(key, rows) == rows, trial.trial_id
    assert len(seen) == 4


# ---------------------------------------------------------------------------- end to end
@shared
def test_sweep_over_shared_csvs_offline(ray_local, tmp_path, monkeypatch, no_network):
    import yaml

    from engine.execution.orchestrate import run_sweep

    monkeypatch.setenv("CAUSALMIX_DATA", str(SHARED_DATASETS))
    raw = small_spec(tmp_path, datasets=["tabarena/blood-transfusion-service-center",
                                         "tabarena/diabetes"],
                     methods=["finetune", "tableaugment"], n_train=48)
    spec_file = tmp_path / "offline.yaml"
    spec_file.write_text(yaml.safe_dump(raw))
    spec = load_spec(spec_file)
    assert spec.data_dir == str(SHARED_DATASETS.resolve())  # travels to every worker
    sweep_dir = run_sweep(spec, report=False)
    res = pd.read_parquet(sweep_dir / "results.parquet")
    assert len(res) == 4 and (res["status"] == "ok").all(), res["error"].tolist()
    assert set(res["dataset"]) == {"tabarena/blood-transfusion-service-center",
                                   "tabarena/diabetes"}
    assert not cache_dir().exists()
