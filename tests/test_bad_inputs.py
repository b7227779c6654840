"""A corpus of bad and odd inputs through the real command line: each gets exit status 2 and
exactly one error line naming what is wrong, never a traceback, and no results file is touched.

Cases run in-process (``engine.cli.main``) so the corpus stays fast; the closed-pipe case runs
as a real subprocess.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from engine.cli import main
from tests.conftest import REPO, small_spec, write_yaml

Case = tuple[str, Callable[[Path], list[str]], str]


def _csv(tmp: Path, rows: int = 120, **extra: Any) -> Path:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.normal(size=rows), "b": rng.integers(0, 5, rows),
                       "label": np.where(rng.normal(size=rows) > 0, "yes", "no")})
    for k, v in extra.items():
        df[k] = v
    path = tmp / "data.csv"
    df.to_csv(path, index=False)
    return path


def _local(tmp: Path, path: Path, target: str = "label") -> dict[str, Any]:
    return {"name": "local", "path": str(path), "target": target}


def _spec(tmp: Path, **overrides: Any) -> Path:
    return write_yaml(tmp / "sweep.yaml", small_spec(tmp, **overrides))


def _validate(**overrides: Any) -> Callable[[Path], list[str]]:
    return lambda tmp: ["validate", str(_spec(tmp, **overrides))]


def _raw(text: str, name: str = "sweep.yaml") -> Callable[[Path], list[str]]:
    def build(tmp: Path) -> list[str]:
        (tmp / name).write_text(text)
        return ["validate", str(tmp / name)]
    return build


def _data(make: Callable[[Path], Path], command: str = "validate",
          target: str = "label") -> Callable[[Path], list[str]]:
    def build(tmp: Path) -> list[str]:
        spec = _spec(tmp, datasets=[_local(tmp, make(tmp), target)], methods=["finetune"])
        return [command, str(spec)]
    return build


def _names(tmp: Path, *names: str) -> list[str]:
    """A sweep whose local datasets carry ``names`` (one CSV each)."""
    refs = []
    for i, name in enumerate(names):
        path = _csv(tmp).rename(tmp / f"d{i}.csv")
        refs.append({"name": name, "path": str(path), "target": "label"})
    return ["validate", str(_spec(tmp, datasets=refs, methods=["finetune"]))]


def _parquet(frame: pd.DataFrame) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        frame.to_parquet(tmp / "data.parquet")
        return tmp / "data.parquet"
    return make


def _report(write: Callable[[Path], None], *extra: str) -> Callable[[Path], list[str]]:
    def build(tmp: Path) -> list[str]:
        sweep = tmp / "sweep"
        sweep.mkdir()
        write(sweep)
        return ["report", str(sweep), *[e.format(tmp=tmp) for e in extra]]
    return build


def _good_results(sweep: Path) -> None:
    pd.DataFrame({"trial_id": ["finetune/x/fold0/scale0_mix0_seed0"], "dataset": ["x"],
                  "fold": [0], "method": ["finetune"], "status": ["ok"],
                  "normalized_improvement_pct": [1.0]}).to_parquet(sweep / "results.parquet")


def _bytes(data: bytes) -> Callable[[Path], None]:
    return lambda sweep: (sweep / "results.parquet").write_bytes(data)


def _frame(frame: pd.DataFrame) -> Callable[[Path], None]:
    return lambda sweep: frame.to_parquet(sweep / "results.parquet")


def _file(tmp: Path, name: str = "afile") -> Path:
    (tmp / name).write_text("x")
    return tmp / name


ROWS = {"trial_id": ["t"], "dataset": ["d"], "fold": [0], "method": ["finetune"], "status": ["ok"]}
ODD = pd.DataFrame({"a": [1.0, 2.0] * 30, "label": ["x", "y"] * 30})

CASES: list[Case] = [
    # ---------------------------------------------------------------- the sweep file
    ("missing spec file", lambda tmp: ["validate", str(tmp / "nope.yaml")], "no such file"),
    ("not YAML", _raw("name: [unclosed\n"), "not valid YAML"),
    ("binary file", lambda tmp: (_file(tmp, "b.yaml").write_bytes(b"\xff\xfe\x00\x81"),
                                 ["validate", str(tmp / "b.yaml")])[1], "<file>"),
    ("top level is a list", _raw("- a\n- b\n"), "mapping"),
    ("duplicate key", _raw("name: t\ndatasets: [sklearn/iris]\nmethods: [finetune]\n"
                           "methods: [causalmixft]\n"), "'methods': duplicate key (line 4"),
    ("duplicate nested key", _raw("name: t\ndatasets: [sklearn/iris]\nmethods: [finetune]\n"
                                  "finetune:\n  steps: 5\n  steps: 6\n"), "'steps': duplicate"),
    ("dataset folders collide", lambda tmp: _names(tmp, "d a", "d_a"), "share the folder 'd_a'"),
    ("dataset name too long", lambda tmp: _names(tmp, "x" * 300), "300 characters"),
    ("sweep name too long", _validate(name="s" * 200), "at most 120"),
    ("table too small for its folds", _data(lambda tmp: _csv(tmp, rows=5)),
     "5 rows, fewer than n_train=64"),
    ("dataset named '..'", lambda tmp: _names(tmp, ".."), "not a folder name"),
    ("dataset names differing in case", lambda tmp: _names(tmp, "Wine", "wine"),
     "'Wine' and 'wine' share the folder"),
    ("scales sharing a trial folder", _validate(grid={"synthetic_scale": [1, 1.0000001]}),
     "'grid.synthetic_scale': 1.0 and 1.0000001 share the trial folder 'scale1'"),
    ("mixes sharing a trial folder", _validate(grid={"mix_ratio": [0.5, 0.50000001]}),
     "'grid.mix_ratio'"),
    ("scale giving no synthetic row", _validate(grid={"synthetic_scale": [0.001]}),
     "rounds to 0 synthetic rows"),
    ("search low giving no synthetic row", _validate(search={
        "mode": "optuna", "budget": 2, "space": {"synthetic_scale": [1e-4, 2]}}),
     "'search.space.synthetic_scale': low"),
    ("openml id not a number", _validate(datasets=["openml/abc"]), "numeric data id"),
    ("model checkpoint missing", _validate(model={"name": "pfn", "checkpoint": "/no/such.pt"}),
     "'model.checkpoint': no such file"),
    ("empty file", _raw(""), "mapping"),
    ("unknown top-level field", _validate(colour="red"), "'colour'"),
    ("name missing", _validate(name=None), "'name'"),
    ("name with a slash", _validate(name="a/b"), "'name'"),
    ("negative seed", _validate(seed=-1), "'seed'"),
    ("seed beyond 32 bits", _validate(seed=10**30), "'seed'"),
    ("seed as text", _validate(seed="zero"), "'seed'"),
    ("no datasets", _validate(datasets=[]), "'datasets'"),
    ("unknown dataset", _validate(datasets=["sklearn/nope"]), "'datasets[0]'"),
    ("local file missing", _validate(datasets=[{"name": "x", "path": "/no/such.csv",
                                                "target": "y"}]), "'datasets[0].path'"),
    ("local file wrong suffix", lambda tmp: ["validate", str(_spec(
        tmp, datasets=[_local(tmp, _file(tmp, "d.txt"))]))], "'datasets[0].path'"),
    ("target column missing", lambda tmp: ["validate", str(_spec(
        tmp, datasets=[_local(tmp, _csv(tmp), "nope")]))], "'datasets[0].target'"),
    ("duplicate dataset", _validate(datasets=["sklearn/wine", "sklearn/wine"]), "'datasets'"),
    ("zero folds", _validate(folds=0), "'folds'"),
    ("more folds than outer folds", _validate(folds=9), "'folds'"),
    ("fold index out of range", _validate(folds=[0, 7]), "'folds'"),
    ("one outer fold", _validate(outer_folds=1), "'outer_folds'"),
    ("n_train too small", _validate(n_train=2), "'n_train'"),
    ("n_train absurd", _validate(n_train=10**12), "'n_train'"),
    ("val_fraction above 1", _validate(val_fraction=2), "'val_fraction'"),
    ("max_test_rows zero", _validate(max_test_rows=0), "'max_test_rows'"),
    ("no methods", _validate(methods=[]), "'methods'"),
    ("unknown method", _validate(methods=["telepathy"]), "'methods[0]'"),
    ("options on finetune", _validate(methods=[{"name": "finetune", "options": {"a": 1}}]),
     "'methods[0].options'"),
    ("unknown generator option", _validate(methods=[{"name": "scm", "options": {"nn": 1}}]),
     "valid:"),
    ("bad generator option value", _validate(
        methods=[{"name": "tableaugment", "options": {"k": 0}}]), "'methods[0].options'"),
    ("method twice", _validate(methods=["scm", "scm"]), "'methods'"),
    ("negative scale", _validate(grid={"synthetic_scale": [-1]}), "'grid.synthetic_scale[0]'"),
    ("mix above 1", _validate(grid={"mix_ratio": [1.5]}), "'grid.mix_ratio[0]'"),
    ("scale that would exhaust memory", _validate(grid={"synthetic_scale": [1e6]}),
     "max_synthetic_rows"),
    ("scale NaN", _raw("name: x\ndatasets: [sklearn/wine]\nmethods: [scm]\n"
                       "grid: {synthetic_scale: [.nan]}\n"), "'grid.synthetic_scale[0]'"),
    ("unknown grid field", _validate(grid={"scales": [1]}), "'grid.scales'"),
    ("unknown model", _validate(model={"name": "gpt"}), "'model.name'"),
    ("unknown model option", _validate(model={"name": "pfn", "layers": 3}), "valid:"),
    ("bad model option value", _validate(model={"name": "pfn", "categoricals": "onehot"}),
     "categoricals must be one of target, codes"),
    ("unknown finetune field", _validate(finetune={"stepz": 3}), "'finetune.stepz'"),
    ("negative learning rate", _validate(finetune={"lr": -1}), "'finetune.lr'"),
    ("steps as text", _validate(finetune={"steps": "many"}), "'finetune.steps'"),
    ("negative GPUs", _validate(resources={"trial_gpus": -1}), "'resources.trial_gpus'"),
    ("unknown resources field", _validate(resources={"tpus": 1}), "'resources.tpus'"),
    ("max_features zero", _validate(preprocessing={"max_features": 0}),
     "'preprocessing.max_features'"),
    ("zero synthetic-row cap", _validate(max_synthetic_rows=0), "'max_synthetic_rows'"),
    ("unknown split protocol", _validate(split="random"), "'split'"),
    ("missing data_dir", _validate(data_dir="/no/such/mirror"), "'data_dir'"),
    # ---------------------------------------------------------------- storage paths
    ("storage is a file", lambda tmp: ["validate", str(_spec(tmp, storage=str(_file(tmp))))],
     "'storage'"),
    ("storage under a file", lambda tmp: ["validate", str(_spec(
        tmp, storage=str(_file(tmp) / "sub")))], "'storage'"),
    ("storage not writable", _validate(storage="/proc/causalmix"), "'storage'"),
    ("storage URI of an unknown scheme", _validate(storage="nosuchfs://bucket/runs"),
     "'storage'"),
    ("storage file URI with a host", _validate(storage="file://somehost/runs"), "'storage'"),
    ("storage file URI under a file", lambda tmp: ["validate", str(_spec(
        tmp, storage=_file(tmp).as_uri() + "/sub"))], "'storage'"),
    # ---------------------------------------------------------------- odd data
    ("n_train larger than the data", lambda tmp: ["validate", str(_spec(
        tmp, datasets=[_local(tmp, _csv(tmp, rows=40))]))], "n_train=64"),
    ("list-valued column", _data(_parquet(ODD.assign(a=[[1.0, 2.0]] * 60))),
     "column 'a' holds lists"),
    ("struct-valued column", _data(_parquet(ODD.assign(a=[{"x": 1}] * 60))),
     "column 'a' holds lists"),
    ("values of 1e308", _data(_parquet(ODD.assign(a=[1e308, -1e308] * 30))),
     "too large to scale"),
    ("infinite values", _data(_parquet(ODD.assign(a=[np.inf, 1.0] * 30))), "infinite"),
    ("single-class target", _data(_parquet(ODD.assign(label="x"))), "class"),
    ("header-only CSV", _data(lambda tmp: (tmp / "e.csv", (tmp / "e.csv").write_text(
        "a,b,label\n"))[0]), "local"),
    ("odd data through run", _data(_parquet(ODD.assign(a=[1e308, 1.0] * 30)), "run"),
     "too large to scale"),
    # ---------------------------------------------------------------- report
    ("report on a missing folder", lambda tmp: ["report", str(tmp / "nope")], "no such sweep"),
    ("report without results", _report(lambda sweep: None), "missing"),
    ("report on a corrupt file", _report(_bytes(b"not parquet at all" * 10)), "not a readable"),
    ("report on an empty file", _report(_bytes(b"")), "not a readable"),
    ("report on another table", _report(_frame(pd.DataFrame({"x": [1, 2]}))),
     "no column 'trial_id'"),
    ("report on text metrics", _report(_frame(pd.DataFrame(
        {**ROWS, "test_roc_auc": ["high"]}))), "column 'test_roc_auc'"),
    ("report on list metrics", _report(_frame(pd.DataFrame(
        {**ROWS, "test_roc_auc": [[0.5, 0.6]]}))), "lists"),
    ("report on zero rows", _report(_frame(pd.DataFrame(ROWS).iloc[:0])), "no rows"),
    ("report --out is a file", _report(_good_results, "--out", "{tmp}/sweep/results.parquet"),
     "is a file"),
    ("report --out under a file", _report(_good_results, "--out",
                                          "{tmp}/sweep/results.parquet/sub"), "report output"),
]


def _results_files(tmp: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in tmp.rglob("*.parquet") if "results" in p.name}


@pytest.mark.parametrize(("what", "build", "words"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_gets_one_line(tmp_path, capsys, what, build, words):
    argv = build(tmp_path)
    before = _results_files(tmp_path)
    code = main(argv)
    out, err = capsys.readouterr()
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2, f"{what}: exit {code}; stderr: {err}"
    assert len(lines) == 1 and lines[0].startswith("causalmix: error:"), err
    assert words in lines[0], lines[0]
    assert "Traceback" not in out + err
    assert _results_files(tmp_path) == before, "a results file was changed"


def test_corpus_is_large_enough():
    assert len(CASES) >= 50


def test_closed_pipe_is_quiet(tmp_path):
    """``causalmix validate FILE | head -1``: the reader goes away early; no traceback."""
    spec = write_yaml(tmp_path / "s.yaml", small_spec(tmp_path))
    proc = subprocess.run(
        f"{sys.executable} -m engine.cli validate {spec} | head -c 10",
        shell=True, cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert proc.stdout.startswith(str(spec)[:10])
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr


def test_damaged_results_are_rebuilt_from_trial_records(tmp_path, capsys):
    """A corrupt results.parquet beside readable trial records: the report rebuilds it."""
    from engine.storage.store import SweepStore

    sweep = tmp_path / "sweep"
    row = {**{k: v[0] for k, v in ROWS.items()}, "normalized_improvement_pct": 1.0}
    SweepStore(sweep).write_trial("t", {"result": row, "evaluations": []})
    (sweep / "results.parquet").write_bytes(b"garbage")
    code = main(["report", str(sweep)])
    _, err = capsys.readouterr()
    assert code == 0, err
    assert "rebuilt it from the sweep's trial records" in err
    assert pd.read_parquet(sweep / "results.parquet")["trial_id"].tolist() == ["t"]
