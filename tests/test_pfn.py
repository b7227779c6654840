"""The embedded PFN: bundled weights, predictions, limits, and the pretraining loop."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from sklearn.datasets import load_breast_cancer
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from engine.core.errors import DataError, SpecError
from engine.models import load_model
from engine.models.pfn import EmbeddedPFN, build_pfn, bundled_checkpoint_path, load_weights
from engine.models.pretrain import evaluate_prior, load_config, run_pretraining

TINY = Path(__file__).parent / "data" / "pfn_pretrain_tiny.yaml"


@pytest.fixture(scope="module")
def pfn() -> EmbeddedPFN:
    model = load_model("pfn")
    assert isinstance(model, EmbeddedPFN)
    return model


@pytest.fixture(scope="module")
def breast_cancer() -> tuple[np.ndarray, ...]:
    data = load_breast_cancer()
    x_tr, x_te, y_tr, y_te = train_test_split(
        data.data, data.target, train_size=256, stratify=data.target, random_state=0
    )
    mean, sd = x_tr.mean(0), x_tr.std(0)
    x_tr = ((x_tr - mean) / sd).astype(np.float32)
    return x_tr, ((x_te - mean) / sd).astype(np.float32), y_tr, y_te


def test_bundled_checkpoint_is_small_and_complete():
    path = bundled_checkpoint_path()
    assert path.is_file()
    assert path.stat().st_size <= 10 * 1024 * 1024
    config, state, meta = load_weights(path)
    assert config.max_classes == 10 and config.max_features == 100
    assert state and meta.get("steps", 0) > 0


def test_predict_proba_shapes_and_rows_sum_to_one(pfn):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((60, 7)).astype(np.float32)
    y = rng.integers(0, 3, 60)
    proba = pfn.fit(x[:40], y[:40], n_classes=3).predict_proba(x[40:])
    assert proba.shape == (20, 3)
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-5)
    assert (proba >= 0).all()


def test_beats_majority_on_breast_cancer(pfn, breast_cancer):
    x_tr, x_te, y_tr, y_te = breast_cancer
    proba = pfn.fit(x_tr, y_tr).predict_proba(x_te)
    assert roc_auc_score(y_te, proba[:, 1]) > 0.8


def test_probabilities_are_deterministic(breast_cancer):
    x_tr, x_te, y_tr, _ = breast_cancer
    a = build_pfn().fit(x_tr, y_tr).predict_proba(x_te)
    b = build_pfn().fit(x_tr, y_tr).predict_proba(x_te)
    np.testing.assert_array_equal(a, b)


def test_query_rows_do_not_influence_each_other(pfn, breast_cancer):
    x_tr, x_te, y_tr, _ = breast_cancer
    pfn.fit(x_tr, y_tr)
    whole = pfn.predict_proba(x_te[:50])
    alone = pfn.predict_proba(x_te[:5])
    np.testing.assert_allclose(whole[:5], alone, atol=1e-5)


def test_forward_episode_is_differentiable():
    model = build_pfn(random_init=True, d_model=32, n_heads=2, n_layers=1, d_ff=32)
    x = torch.randn(30, 4)
    y = torch.randint(0, 2, (30,))
    logits = model.forward_episode(x[:20], y[:20], x[20:], 2)
    assert logits.shape == (10, 2)
    torch.nn.functional.cross_entropy(logits, y[20:]).backward()
    assert any(p.grad is not None for p in model.module.parameters())


def test_over_limit_tables_are_refused(pfn):
    rng = np.random.default_rng(0)
    with pytest.raises(DataError, match="features"):
        pfn.fit(rng.standard_normal((20, 101)), rng.integers(0, 2, 20))
    with pytest.raises(DataError, match="classes"):
        pfn.fit(rng.standard_normal((20, 3)), np.arange(20) % 11)
    with pytest.raises(DataError, match="context rows"):
        pfn.check_table(pfn.max_context + 1, 3, 2)


# ---------------------------------------------------------------------------- pretraining
def _tiny_config(tmp_path: Path, **train: int) -> Path:
    raw = yaml.safe_load(TINY.read_text())
    raw["run_dir"] = str(tmp_path / "run")
    raw["train"].update(train)
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_pretraining_lowers_loss(tmp_path):
    cfg_path = _tiny_config(tmp_path)
    cfg = load_config(cfg_path)
    before = evaluate_prior(
        build_pfn(random_init=True, **cfg.model.to_dict()).module, cfg, torch.device("cpu")
    )
    out = run_pretraining(cfg_path, output=tmp_path / "w.pt")
    after = evaluate_prior(build_pfn(checkpoint=str(out)).module, cfg, torch.device("cpu"))
    assert after["prior_loss"] < before["prior_loss"] - 0.02


def test_pretraining_resumes_from_checkpoint(tmp_path, capsys):
    cfg_a = _tiny_config(tmp_path / "a", steps=12, checkpoint_every=4)
    whole = run_pretraining(cfg_a, output=tmp_path / "a.pt")
    cfg_b = _tiny_config(tmp_path / "b", steps=12, checkpoint_every=4)
    ckpt = run_pretraining(cfg_b, output=tmp_path / "b.pt", stop_at=6)
    assert ckpt.name == "last.pt" and not (tmp_path / "b.pt").exists()
    resumed = run_pretraining(cfg_b, output=tmp_path / "b.pt")
    assert "resumed from" in capsys.readouterr().out
    _, wa, _ = load_weights(whole)
    _, wb, _ = load_weights(resumed)
    for key in wa:
        torch.testing.assert_close(wa[key], wb[key])


@pytest.mark.parametrize(
    ("section", "key", "value", "field"),
    [
        ("train", "stepz", 3, "train.stepz"),
        ("train", "lr", "fast", "train.lr"),
        ("model", "n_layers", 1.5, "model.n_layers"),
        (None, "devise", "cpu", "devise"),
        ("prior", "tree_prob", 1.5, "prior.tree_prob"),
        ("prior", "tree_prob", 0.3, "prior.tree_prob"),  # the tiny config samples with numpy
    ],
)
def test_config_errors_name_the_field(tmp_path, section, key, value, field):
    raw = yaml.safe_load(TINY.read_text())
    if section is None:
        raw[key] = value
    else:
        raw[section][key] = value
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(SpecError) as info:
        load_config(path)
    assert info.value.field == field
    assert field in str(info.value)


# ---------------------------------------------------------------------------- torch prior
def test_torch_prior_is_reproducible_from_seed_and_step():
    from engine.models.prior import PriorConfig
    from engine.models.prior_torch import make_generator, sample_batch_torch

    cfg = PriorConfig(random_slot_prob=0.5)
    a = sample_batch_torch(make_generator(3, 7), cfg, 6, 40)
    b = sample_batch_torch(make_generator(3, 7), cfg, 6, 40)
    c = sample_batch_torch(make_generator(3, 8), cfg, 6, 40)
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    assert not torch.equal(a.x, c.x)


def test_torch_prior_tasks_are_well_formed():
    from engine.models.prior import PriorConfig
    from engine.models.prior_torch import make_generator, sample_batch_torch

    cfg = PriorConfig(random_slot_prob=1.0)
    batch = sample_batch_torch(make_generator(0, 0), cfg, 16, 64, n_query=32)
    assert batch.x.shape == (16, 96, 100) and torch.isfinite(batch.x).all()
    assert torch.equal(batch.feature_mask.sum(1), batch.n_features)
    assert (batch.x[~batch.feature_mask[:, None, :].expand_as(batch.x)] == 0).all()
    for i in range(16):  # every class of a task appears among its context rows
        ctx = set(batch.y[i, :64].tolist())
        assert ctx == set(range(int(batch.n_classes[i])))
        assert set(batch.y[i].tolist()) <= ctx
    ctx_x = batch.x[:, :64]  # standardised on the context rows
    live = batch.feature_mask & (ctx_x.std(1, unbiased=False) > 1e-3)
    torch.testing.assert_close(ctx_x.mean(1)[live], torch.zeros(int(live.sum())), atol=1e-4,
                               rtol=0)


def test_torch_prior_declares_categories_as_the_pfn_encodes_them():
    from engine.models.prior import PriorConfig
    from engine.models.prior_torch import make_generator, sample_batch_torch

    plain = PriorConfig(random_slot_prob=0.5, categorical_prob=1.0)
    declared = PriorConfig(random_slot_prob=0.5, categorical_prob=1.0, target_encode_prob=1.0)
    a = sample_batch_torch(make_generator(1, 2), plain, 12, 80)
    b = sample_batch_torch(make_generator(1, 2), declared, 12, 80)
    assert torch.equal(a.y, b.y) and torch.equal(a.feature_mask, b.feature_mask)
    changed = (a.x != b.x).any(dim=1)  # (task, slot): the columns that were encoded
    assert changed.any(dim=1).sum() >= 6
    for t, j in torch.nonzero(changed).tolist():  # shares of a level: in [0, 1], one per code
        codes, shares = a.x[t, :80, j], b.x[t, :80, j]
        assert 0.0 <= float(shares.min()) and float(shares.max()) <= 1.0
        pairs = torch.unique(torch.stack([codes, shares]), dim=1)
        assert pairs.shape[1] == len(torch.unique(codes))
    again = sample_batch_torch(make_generator(1, 2), declared, 12, 80)
    assert torch.equal(again.x, b.x)


def test_tree_mechanism_is_a_piecewise_constant_function_of_the_parents():
    from engine.models.prior_torch import _Draw, _trees, make_generator

    prev = torch.randn(2, 60, 6)
    prev[:, 30:] = prev[:, :30]  # rows 30.. repeat rows ..29 on every column
    prev[:, 30:, 4:] = torch.randn(2, 30, 2)  # except columns 4-5, which are no parent
    idx = torch.tensor([0, 1, 2, 3]).repeat(2, 5, 1)
    coef = torch.ones(2, 5, 4)
    coef[:, :, 3] = 0  # parents 0-2 only
    out = _trees(_Draw(make_generator(0, 0), torch.device("cpu")), prev, idx, coef)
    assert out.shape == (2, 60, 5)
    torch.testing.assert_close(out[:, 30:], out[:, :30], atol=0, rtol=0)
    distinct = [len(torch.unique(out[t, :, j])) for t in range(2) for j in range(5)]
    assert max(distinct) <= 16 and min(distinct) >= 2


def test_torch_prior_tree_prob_changes_mechanisms_only_when_set():
    from engine.models.prior import PriorConfig
    from engine.models.prior_torch import make_generator, sample_batch_torch

    base = sample_batch_torch(make_generator(3, 4), PriorConfig(), 8, 64)
    zero = sample_batch_torch(make_generator(3, 4), PriorConfig(tree_prob=0.0), 8, 64)
    assert torch.equal(base.x, zero.x) and torch.equal(base.y, zero.y)
    trees = sample_batch_torch(make_generator(3, 4), PriorConfig(tree_prob=1.0), 8, 64)
    again = sample_batch_torch(make_generator(3, 4), PriorConfig(tree_prob=1.0), 8, 64)
    assert torch.equal(trees.x, again.x) and torch.equal(trees.y, again.y)
    assert not torch.equal(trees.x, base.x) and torch.isfinite(trees.x).all()
    assert all(len(torch.unique(trees.y[t])) >= 2 for t in range(8))


def test_constant_schedule_continues_from_init_weights(tmp_path):
    first = run_pretraining(_tiny_config(tmp_path / "a", steps=6), output=tmp_path / "a.pt")
    raw = yaml.safe_load(_tiny_config(tmp_path / "b", steps=4).read_text())
    raw["init_from"] = str(first)
    raw["train"].update(schedule="constant", sampler="torch", ema=0.9)
    raw["prior"]["random_slot_prob"] = 0.5
    path = tmp_path / "b.yaml"
    path.write_text(yaml.safe_dump(raw))
    out = run_pretraining(path, output=tmp_path / "b.pt")
    _, _, meta = load_weights(out)
    assert meta["total_steps"] == 10 and meta["ema"]
    # Raising steps resumes the same run (last.pt) and goes on from step 4.
    raw["train"]["steps"] = 6
    path.write_text(yaml.safe_dump(raw))
    _, _, meta = load_weights(run_pretraining(path, output=tmp_path / "c.pt"))
    assert meta["steps"] == 6 and meta["total_steps"] == 12


def test_spread_slot_ensemble_is_deterministic_and_normalised(breast_cancer):
    x_tr, x_te, y_tr, _ = breast_cancer
    a = build_pfn(slots="spread").fit(x_tr, y_tr).predict_proba(x_te[:40])
    b = build_pfn(slots="spread").fit(x_tr, y_tr).predict_proba(x_te[:40])
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a.sum(1), 1.0, atol=1e-5)
    with pytest.raises(Exception, match="slots"):
        build_pfn(slots="middle")


def test_rank_gauss_view_ignores_monotone_distortions():
    """Normal scores depend on the order of values only: a heavy-tailed, monotonely
    distorted column gives the same view; ties share a score; constant columns are 0."""
    from engine.models.pfn import rank_gauss

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(200, 3, generator=gen)
    x[:, 2] = 7.0
    q = torch.randn(50, 3, generator=gen)
    zc, zq = rank_gauss(x, q)
    warped = x.clone()
    warped[:, 0] = torch.exp(3 * x[:, 0])  # skewed, heavy-tailed
    wq = q.clone()
    wq[:, 0] = torch.exp(3 * q[:, 0])
    wc, wzq = rank_gauss(warped, wq)
    torch.testing.assert_close(wc[:, 0], zc[:, 0])
    torch.testing.assert_close(wzq[:, 0], zq[:, 0])
    torch.testing.assert_close(zc.mean(0)[:2], torch.zeros(2), atol=1e-5, rtol=0)
    torch.testing.assert_close(zc.std(0, unbiased=False)[:2], torch.ones(2))
    assert torch.all(zc[:, 2] == 0) and torch.all(zq[:, 2] == 0)
    ties = rank_gauss(torch.tensor([[1.0], [2.0], [2.0], [3.0]]), torch.tensor([[2.0]]))[1]
    assert ties.item() == 0.0


def test_mixed_transforms_change_half_the_passes(breast_cancer):
    x_tr, x_te, y_tr, y_te = breast_cancer
    plain = build_pfn().fit(x_tr, y_tr).predict_proba(x_te)
    mixed = build_pfn(transforms="mixed").fit(x_tr, y_tr).predict_proba(x_te)
    again = build_pfn(transforms="mixed").fit(x_tr, y_tr).predict_proba(x_te)
    np.testing.assert_array_equal(mixed, again)
    np.testing.assert_allclose(mixed.sum(1), 1.0, atol=1e-5)
    assert np.abs(mixed - plain).max() > 1e-4
    assert roc_auc_score(y_te, mixed[:, 1]) > 0.95
    with pytest.raises(Exception, match="transforms"):
        build_pfn(transforms="log")


def test_target_encoding_gives_smoothed_class_rates():
    """Each level of a category column becomes (hits + m * prior) / (count + m) among the
    context rows; a query level the context never saw gets the prior; other columns stay."""
    from engine.models.target_encoding import SMOOTHING, target_encode

    x = torch.tensor([[0.0, 5.0], [0.0, 6.0], [1.0, 7.0], [1.0, 8.0], [1.0, 9.0]])
    y = torch.tensor([1, 1, 0, 0, 1])
    q = torch.tensor([[1.0, 1.0], [2.0, 2.0]])
    ec, eq = target_encode(x, y, q, [0], cls=1)
    m, prior = SMOOTHING, 3 / 5
    level0 = (2 + m * prior) / (2 + m)
    level1 = (1 + m * prior) / (3 + m)
    torch.testing.assert_close(ec[:, 0], torch.tensor([level0, level0, level1, level1, level1]))
    torch.testing.assert_close(eq[:, 0], torch.tensor([level1, prior]))
    torch.testing.assert_close(ec[:, 1], x[:, 1])
    assert x[0, 0] == 0.0  # the inputs are not modified in place


def _category_table(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The class is set by which of 8 levels a row has, through arbitrary codes (not
    monotone in the code), plus two noise columns."""
    rng = np.random.default_rng(seed)
    level = rng.integers(0, 8, n)
    positive = np.isin(level, [0, 3, 5, 6])
    y = np.where(rng.random(n) < 0.9, positive, ~positive).astype(np.int64)
    x = np.column_stack([(level - 3.5) / 2.3, rng.standard_normal((n, 2))]).astype(np.float32)
    return x, y


def test_category_columns_are_read_by_level_not_by_code():
    x_tr, y_tr = _category_table(0, 200)
    x_te, y_te = _category_table(1, 400)
    mask = np.array([True, False, False])
    scores = {}
    for mode in ("target", "codes"):
        model = build_pfn(categoricals=mode)
        model.set_categorical(mask)
        scores[mode] = roc_auc_score(y_te, model.fit(x_tr, y_tr).predict_proba(x_te)[:, 1])
    assert scores["target"] > 0.85 and scores["target"] > scores["codes"] + 0.1
    plain = build_pfn().fit(x_tr, y_tr)  # no mask set: every column is read as a number
    np.testing.assert_allclose(plain.predict_proba(x_te), build_pfn(categoricals="codes").fit(
        x_tr, y_tr).predict_proba(x_te))
    with pytest.raises(DataError, match="categorical"):
        plain.set_categorical([True])
        plain.fit(x_tr, y_tr)
    with pytest.raises(Exception, match="categoricals"):
        build_pfn(categoricals="onehot")


def test_multiclass_category_encoding_is_deterministic_and_differentiable():
    rng = np.random.default_rng(0)
    level = rng.integers(0, 5, 90)
    x = np.column_stack([level, rng.standard_normal(90)]).astype(np.float32)
    y = (level % 3).astype(np.int64)
    model = build_pfn()
    model.set_categorical([True, False])
    a = model.fit(x[:60], y[:60], n_classes=3).predict_proba(x[60:])
    b = model.fit(x[:60], y[:60], n_classes=3).predict_proba(x[60:])
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a.sum(1), 1.0, atol=1e-5)
    major = int(np.bincount(y[:60]).argmax())  # the class whose shares are encoded
    assert roc_auc_score(y[60:] == major, a[:, major]) > 0.9
    model.module.train()
    logits = model.forward_episode(torch.as_tensor(x[:60]), torch.as_tensor(y[:60]),
                                   torch.as_tensor(x[60:]), 3, np.array([True, False]))
    logits.sum().backward()
    assert any(p.grad is not None for p in model.module.parameters())
    model.module.eval()


def test_multiclass_tables_encode_the_most_frequent_class():
    from engine.models.pfn import encoded_class

    assert encoded_class(torch.tensor([0, 0, 1]), 2) == 1
    assert encoded_class(torch.tensor([0, 2, 2, 1, 2]), 3) == 2
    assert encoded_class(torch.tensor([1, 0, 0, 1]), 4) == 0  # ties: the lowest class
