"""Sweep-file validation: good files parse; each bad field is named in one line."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest

from engine.core.errors import SpecError
from engine.spec.finetune_config import FinetuneConfig
from engine.spec.sweep_file import load_spec, parse_spec
from tests.conftest import REPO, small_spec, write_yaml


def test_smoke_spec_parses():
    spec = load_spec(REPO / "sweeps" / "smoke.yaml")
    assert spec.name == "smoke"
    assert spec.folds == (0, 1)
    assert spec.synthetic_scales == (0.5, 1.0, 2.0)
    assert spec.mix_ratios == (0.25, 0.5)
    assert [m.name for m in spec.methods] == ["finetune", "causalmixft", "scm"]


@pytest.mark.parametrize(
    ("override", "field", "words"),
    [
        ({"datasets": ["sklearn/nope"]}, "datasets[0]", "unknown dataset"),
        ({"methods": ["finetune", "telepathy"]}, "methods[1]", "unknown method"),
        ({"grid": {"synthetic_scale": [1, -0.5], "mix_ratio": [0.5]}},
         "grid.synthetic_scale[1]", "positive"),
        ({"grid": {"synthetic_scale": [1], "mix_ratio": [1.5]}}, "grid.mix_ratio[0]", "[0, 1]"),
        ({"n_train": "many"}, "n_train", "integer"),
        ({"folds": 9}, "folds", "outer_folds"),
        ({"finetune": {"stepz": 3}}, "finetune.stepz", "unknown field"),
        ({"finetune": {"permute": "yes"}}, "finetune.permute", "true or false"),
        ({"finetune": {"select_by": "accuracy"}}, "finetune.select_by", "roc_auc"),
        ({"finetune": {"l2sp": -1}}, "finetune.l2sp", "[0.0"),
        ({"model": {"name": "gpt"}}, "model.name", "unknown model"),
        ({"colour": "red"}, "colour", "unknown field"),
    ],
)
def test_bad_fields_are_named(tmp_path, override, field, words):
    with pytest.raises(SpecError) as err:
        parse_spec(small_spec(tmp_path, **override), source="s.yaml")
    assert err.value.field == field
    assert words in str(err.value)
    assert "\n" not in str(err.value)


def test_local_csv_without_target_column(tmp_path):
    csv = tmp_path / "t.csv"
    csv.write_text("a,b,label\n1,2,x\n3,4,y\n")
    data = small_spec(tmp_path, datasets=[{"name": "t", "path": str(csv), "target": "klass"}])
    with pytest.raises(SpecError) as err:
        parse_spec(data, source="s.yaml")
    assert err.value.field == "datasets[0].target"
    assert "klass" in str(err.value)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "engine.cli", *args], capture_output=True,
                          text=True, cwd=REPO, timeout=120)


def test_cli_rejects_non_yaml_in_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\n  datasets: [\n")
    proc = _cli("validate", str(bad))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = [x for x in proc.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and "not valid YAML" in lines[0]


def test_cli_names_bad_field_in_one_line(tmp_path):
    bad = write_yaml(tmp_path / "neg.yaml",
                     small_spec(tmp_path, grid={"synthetic_scale": [-1], "mix_ratio": [0.5]}))
    proc = _cli("validate", str(bad))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "grid.synthetic_scale[0]" in proc.stderr
    assert len([x for x in proc.stderr.splitlines() if x.strip()]) == 1


def test_cli_validate_prints_plan(tmp_path):
    good = write_yaml(tmp_path / "good.yaml", small_spec(tmp_path))
    proc = _cli("validate", str(good))
    assert proc.returncode == 0, proc.stderr
    assert '"trials": 6' in proc.stdout  # 2 datasets x (1 finetune + 1 causalmixft + 1 scm)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(SpecError) as err:
        load_spec(Path(tmp_path / "nope.yaml"))
    assert "no such file" in str(err.value)


def test_every_finetune_setting_is_read(tmp_path):
    """Each field of the fine-tuning settings a sweep file gives reaches the trials."""
    given = {"steps": 7, "lr": 5e-5, "weight_decay": 0.1, "patience": 2, "eval_every": 3,
             "episode_rows": 64, "query_fraction": 0.2, "grad_clip": 0.5, "l2sp": 0.5,
             "permute": True, "select_by": "log_loss", "min_delta": 0.01, "wise": 0.5}
    assert set(given) == set(FinetuneConfig.__dataclass_fields__)
    spec = parse_spec(small_spec(tmp_path, finetune=given), source="s.yaml")
    assert asdict(spec.finetune) == given


def test_yaml_merge_key_is_not_a_duplicate(tmp_path):
    """Duplicate keys are refused, but a '<<:' merge with an override is not one."""
    (tmp_path / "m.yaml").write_text(
        f"name: m\ndatasets: [sklearn/wine]\nmethods: [finetune]\nstorage: {tmp_path / 's'}\n"
        "finetune: {steps: 3, patience: 2}\n"
        "resources: {<<: {trial_cpus: 1, generator_cpus: 2}, generator_cpus: 1}\n")
    spec = load_spec(tmp_path / "m.yaml")
    assert (spec.resources.trial_cpus, spec.resources.generator_cpus) == (1.0, 1.0)
    assert spec.finetune.steps == 3


def test_long_names_are_bounded_and_stay_unique():
    from engine.storage.store import bounded

    a, b = "x" * 200 + "a", "x" * 200 + "b"
    assert bounded("short", 120) == "short"
    assert len(bounded(a, 120)) == 120 and bounded(a, 120) != bounded(b, 120)


def test_a_labelled_method_variant_is_its_own_method(tmp_path):
    """The same method twice with other options: each under its own label in ids and keys."""
    from engine.plan.sweep_plan import make_plan

    methods = ["causalmixft", {"name": "causalmixft", "label": "causalmixft_balanced",
                               "options": {"class_balance": "balanced"}}]
    spec = parse_spec(small_spec(tmp_path, methods=methods), source="s.yaml")
    plan = make_plan(spec)
    by = {}
    for t in plan.trials:
        by.setdefault(t.method, []).append(t)
    assert set(by) == {"causalmixft", "causalmixft_balanced"}
    assert len(by["causalmixft"]) == len(by["causalmixft_balanced"])
    assert all(t.trial_id.startswith("causalmixft_balanced/") for t in by["causalmixft_balanced"])
    assert {t.generator for t in plan.trials} == {"scm"}
    assert len({t.key for t in plan.trials}) == len(plan.trials)
    assert len(plan.fits) == 2 * len({(t.fold.dataset["name"], t.fold.fold) for t in plan.trials})
    plain = make_plan(parse_spec(small_spec(tmp_path, methods=["causalmixft"]), source="s.yaml"))
    assert {t.key for t in plain.trials} == {t.key for t in by["causalmixft"]}


@pytest.mark.parametrize("item,field,words", [
    ({"name": "causalmixft", "label": "finetune"}, "methods[1].label", "not a method's"),
    ({"name": "causalmixft", "label": "Bad Name"}, "methods[1].label", "lowercase"),
    ({"name": "causalmixft", "as": "x"}, "methods[1].as", "unknown field"),
    ("causalmixft", "methods", "listed twice"),
])
def test_bad_method_labels_are_named(tmp_path, item, field, words):
    with pytest.raises(SpecError) as err:
        parse_spec(small_spec(tmp_path, methods=["causalmixft", item]), source="s.yaml")
    assert err.value.field == field and words in str(err.value)
