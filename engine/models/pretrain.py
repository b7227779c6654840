"""Pretrain the embedded PFN on the synthetic SCM prior.

``run_pretraining(config)`` reads a YAML file (see ``pretrain_default.yaml`` and, to continue
the shipped weights in chunks, ``pretrain_continue.yaml``), trains with AdamW and a warmup +
cosine or constant schedule (optionally keeping an EMA of the weights), evaluates
periodically on held-out prior tasks and on real scikit-learn datasets, writes a resumable
checkpoint every ``checkpoint_every`` steps and finally a small shippable file (weights +
architecture config + evaluation) to ``output``. A new run may start from ``init_from``
weights. The prior batch of step ``s`` is a function of ``(seed, base + s)`` (numpy or torch
sampler), so a resumed run sees exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import yaml

from engine.core.errors import SpecError
from engine.models.architecture import PFNConfig, PFNTransformer
from engine.models.prior import PriorConfig, TaskBatch, sample_batch, sample_context_size


@dataclass
class TrainConfig:
    """Optimisation settings."""

    steps: int = 2000
    tokens_per_batch: int = 6144
    min_context: int = 32
    max_context: int = 512
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 100
    min_lr_ratio: float = 0.05
    grad_clip: float = 1.0
    log_every: int = 25
    eval_every: int = 250
    checkpoint_every: int = 100
    threads: int = 1
    # "cosine" decays to min_lr_ratio * lr at ``steps``; "constant" holds lr after warmup, so
    # ``steps`` can be raised later and a resumed run simply goes on (chunks accumulate).
    schedule: str = "cosine"
    # Exponential moving average of the weights (0 = off); the shipped weights are the EMA.
    ema: float = 0.0
    # "numpy" (prior.py, one task at a time) or "torch" (prior_torch.py, batched on device).
    sampler: str = "numpy"


@dataclass
class EvalConfig:
    """Periodic evaluation settings."""

    prior_tasks: int = 64
    prior_context: int = 256
    datasets: list[str] = field(default_factory=lambda: ["breast_cancer", "wine", "iris"])
    n_train: int = 256
    seeds: int = 3


@dataclass
class PretrainConfig:
    """The whole pretraining file."""

    seed: int = 0
    device: str = "auto"
    run_dir: str = "pretrain_runs/default"
    output: str | None = None
    # Weights to start from when run_dir has no checkpoint yet: a shippable file (e.g. the
    # bundled pfn_small.pt; fresh optimizer) or a run's last.pt (weights, optimizer, EMA).
    init_from: str | None = None
    model: PFNConfig = field(default_factory=PFNConfig)
    prior: PriorConfig = field(default_factory=PriorConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


_SECTIONS = {"model": PFNConfig, "prior": PriorConfig, "train": TrainConfig, "eval": EvalConfig}
_DATASETS = ("breast_cancer", "wine", "iris")


def _check_value(source: str, name: str, value: Any, default: Any) -> Any:
    """Type-check one scalar against the type of its default value."""
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(default, list):
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    else:  # str or None defaults
        ok = value is None or isinstance(value, str)
    if not ok:
        kind = "a list of names" if isinstance(default, list) else type(default).__name__
        raise SpecError(source, name, f"expected {kind}, got {value!r}")
    return value


def _build_section(source: str, prefix: str, cls: type, raw: Any) -> Any:
    if raw is None:
        return cls()
    if not isinstance(raw, dict):
        raise SpecError(source, prefix, f"expected a mapping, got {raw!r}")
    defaults = cls()
    known = {f.name for f in fields(cls)}
    values = {}
    for key, value in raw.items():
        if key not in known:
            raise SpecError(source, f"{prefix}.{key}", f"unknown field (known: {sorted(known)})")
        values[key] = _check_value(source, f"{prefix}.{key}", value, getattr(defaults, key))
        if isinstance(values[key], int | float) and not isinstance(values[key], bool):
            if values[key] < 0:
                raise SpecError(source, f"{prefix}.{key}", "must not be negative")
    return cls(**values)


def load_config(path: str | Path) -> PretrainConfig:
    """Read and validate a pretraining YAML file; errors name the file and the field."""
    path = Path(path)
    source = str(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise SpecError(source, "<file>", "file not found") from None
    except yaml.YAMLError as exc:
        raise SpecError(source, "<file>", f"not valid YAML ({exc})") from None
    raw = raw or {}
    if not isinstance(raw, dict):
        raise SpecError(source, "<file>", "expected a mapping at the top level")
    top = PretrainConfig()
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key in _SECTIONS:
            values[key] = _build_section(source, key, _SECTIONS[key], value)
        elif key in ("seed", "device", "run_dir", "output", "init_from"):
            values[key] = _check_value(source, key, value, getattr(top, key))
        else:
            raise SpecError(source, key, "unknown field")
    cfg = PretrainConfig(**values)
    _validate(source, cfg)
    return cfg


def _validate(source: str, cfg: PretrainConfig) -> None:
    if cfg.device not in ("auto", "cpu", "cuda") and not cfg.device.startswith("cuda:"):
        raise SpecError(source, "device", f"expected auto, cpu or cuda, got {cfg.device!r}")
    m, p, t = cfg.model, cfg.prior, cfg.train
    if m.d_model % max(m.n_heads, 1) or m.n_heads < 1:
        raise SpecError(source, "model.n_heads", "must divide model.d_model")
    if p.max_features > m.max_features:
        raise SpecError(source, "prior.max_features", "exceeds model.max_features")
    if p.max_classes > m.max_classes or p.max_classes < 2:
        raise SpecError(source, "prior.max_classes", "must be in 2..model.max_classes")
    if not 2 <= p.min_features <= p.max_features:
        raise SpecError(source, "prior.min_features", "must be in 2..prior.max_features")
    if not 8 <= t.min_context <= t.max_context:
        raise SpecError(source, "train.min_context", "must be >= 8 and <= train.max_context")
    if t.steps < 1:
        raise SpecError(source, "train.steps", "must be at least 1")
    for name in ("log_every", "eval_every", "checkpoint_every", "threads"):
        if getattr(t, name) < 1:
            raise SpecError(source, f"train.{name}", "must be at least 1")
    if t.schedule not in ("cosine", "constant"):
        raise SpecError(source, "train.schedule", f"expected cosine or constant: {t.schedule!r}")
    if t.sampler not in ("numpy", "torch"):
        raise SpecError(source, "train.sampler", f"expected numpy or torch, got {t.sampler!r}")
    if not 0.0 <= t.ema < 1.0:
        raise SpecError(source, "train.ema", "must be in [0, 1)")
    for name in ("random_slot_prob", "target_encode_prob", "tree_prob"):  # torch sampler only
        if not 0.0 <= getattr(p, name) <= 1.0:
            raise SpecError(source, f"prior.{name}", "must be in [0, 1]")
        if getattr(p, name) > 0 and t.sampler != "torch":
            raise SpecError(source, f"prior.{name}", "needs train.sampler: torch")
    for name in cfg.eval.datasets:
        if name not in _DATASETS:
            raise SpecError(source, "eval.datasets", f"unknown dataset {name!r} ({_DATASETS})")


# ---------------------------------------------------------------------------- training pieces
def lr_at(step: int, t: TrainConfig) -> float:
    """Linear warmup, then cosine decay to ``min_lr_ratio * lr`` (or constant)."""
    if step < t.warmup_steps:
        return t.lr * (step + 1) / t.warmup_steps
    if t.schedule == "constant":
        return t.lr
    frac = (step - t.warmup_steps) / max(1, t.steps - t.warmup_steps)
    cos = 0.5 * (1 + math.cos(math.pi * min(1.0, frac)))
    return t.lr * (t.min_lr_ratio + (1 - t.min_lr_ratio) * cos)


def batch_for_step(
    cfg: PretrainConfig, step: int, device: torch.device | str = "cpu"
) -> TaskBatch:
    """The (deterministic) prior batch of ``step``, on ``device``."""
    t = cfg.train
    if t.sampler == "torch":
        from engine.models.prior_torch import (
            make_generator,
            sample_batch_torch,
            sample_context_size_torch,
        )

        gen = make_generator(cfg.seed, step, device)
        n_ctx = sample_context_size_torch(gen, t.min_context, t.max_context)
        bs = max(1, t.tokens_per_batch // (n_ctx + cfg.prior.n_query))
        return sample_batch_torch(gen, cfg.prior, bs, n_ctx)
    rng = np.random.default_rng([cfg.seed, step])
    n_ctx = sample_context_size(rng, t.min_context, t.max_context)
    bs = max(1, t.tokens_per_batch // (n_ctx + cfg.prior.n_query))
    return sample_batch(rng, cfg.prior, bs, n_ctx)


def task_loss(model: PFNTransformer, batch: TaskBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean query cross-entropy and accuracy of a batch."""
    c = batch.n_ctx
    logits = model(
        batch.x[:, :c], batch.y[:, :c], batch.x[:, c:], batch.n_classes, batch.n_features,
        batch.feature_mask,
    )
    target = batch.y[:, c:]
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), target.reshape(-1))
    acc = (logits.argmax(-1) == target).float().mean()
    return loss, acc


@torch.no_grad()
def evaluate_prior(model: PFNTransformer, cfg: PretrainConfig, device: torch.device) -> dict:
    """Loss/accuracy on a fixed set of held-out prior tasks (seed offset keeps them apart)."""
    model.eval()
    rng = np.random.default_rng([cfg.seed, 10**9])
    losses, accs = [], []
    left = cfg.eval.prior_tasks
    while left > 0:
        bs = min(8, left)
        batch = sample_batch(rng, cfg.prior, bs, cfg.eval.prior_context).to(device)
        loss, acc = task_loss(model, batch)
        losses.append(loss.item() * bs)
        accs.append(acc.item() * bs)
        left -= bs
    model.train()
    n = cfg.eval.prior_tasks
    return {"prior_loss": sum(losses) / n, "prior_acc": sum(accs) / n}


def _sklearn_dataset(name: str) -> tuple[np.ndarray, np.ndarray]:
    from sklearn import datasets

    loader = {
        "breast_cancer": datasets.load_breast_cancer,
        "wine": datasets.load_wine,
        "iris": datasets.load_iris,
    }[name]
    data = loader()
    return np.asarray(data.data, dtype=np.float64), np.asarray(data.target, dtype=np.int64)


def standardise_split(x_tr: np.ndarray, x_te: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Standardise both parts with the training rows' mean/std (the engine's convention)."""
    mean, sd = x_tr.mean(axis=0), x_tr.std(axis=0)
    sd = np.where(sd > 1e-8, sd, 1.0)
    return ((x_tr - mean) / sd).astype(np.float32), ((x_te - mean) / sd).astype(np.float32)


@torch.no_grad()
def evaluate_real(model: PFNTransformer, cfg: PretrainConfig, device: torch.device) -> dict:
    """Mean ROC-AUC (one-vs-rest macro) on small real datasets with ``n_train`` contexts."""
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split

    model.eval()
    out = {}
    for name in cfg.eval.datasets:
        x, y = _sklearn_dataset(name)
        n_train = min(cfg.eval.n_train, int(0.7 * len(y)))
        aucs = []
        for seed in range(cfg.eval.seeds):
            x_tr, x_te, y_tr, y_te = train_test_split(
                x, y, train_size=n_train, stratify=y, random_state=seed
            )
            x_tr, x_te = standardise_split(x_tr, x_te)
            k = int(y.max()) + 1
            logits = model(
                torch.from_numpy(x_tr)[None].to(device),
                torch.from_numpy(y_tr)[None].to(device),
                torch.from_numpy(x_te)[None].to(device),
                k,
            )[0, :, :k]
            proba = torch.softmax(logits.float(), -1).cpu().numpy()
            if k == 2:
                aucs.append(roc_auc_score(y_te, proba[:, 1]))
            else:
                aucs.append(roc_auc_score(y_te, proba, multi_class="ovr", average="macro"))
        out[f"auc_{name}"] = float(np.mean(aucs))
    model.train()
    return out


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _config_dict(cfg: PretrainConfig) -> dict:
    from dataclasses import asdict

    return asdict(cfg)


def save_shippable(model: PFNTransformer, path: Path, meta: dict) -> Path:
    """Write weights + architecture config (+ metadata) as a small ``.pt`` file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().float().clone() for k, v in model.state_dict().items()}
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(
        {
            "format": "causalmix-pfn/1",
            "arch": model.config.to_dict(),
            "state_dict": state,
            "meta": meta,
        },
        tmp,
    )
    tmp.replace(path)
    return path


# ---------------------------------------------------------------------------- main loop
@dataclass
class RunState:
    """Everything a resumed run needs: model, optimizer, EMA weights, step and history."""

    model: PFNTransformer
    opt: torch.optim.Optimizer
    ema: dict[str, torch.Tensor] | None
    step: int = 0
    elapsed: float = 0.0
    history: list[dict] = field(default_factory=list)
    base_steps: int = 0  # steps already in the weights this run started from (init_from)

    def checkpoint(self, cfg: PretrainConfig) -> dict:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.opt.state_dict(),
            "ema": self.ema,
            "step": self.step,
            "config": _config_dict(cfg),
            "elapsed": self.elapsed,
            "history": self.history,
            "base_steps": self.base_steps,
        }

    def restore(self, ck: dict, *, with_step: bool = True) -> None:
        self.model.load_state_dict(ck["model"])
        self.opt.load_state_dict(ck["optimizer"])
        if self.ema is not None:
            src = ck.get("ema") or ck["model"]
            self.ema = {k: v.detach().clone().float() for k, v in src.items()}
        if with_step:
            self.step, self.elapsed = ck["step"], ck.get("elapsed", 0.0)
            self.history = ck.get("history", [])
            self.base_steps = ck.get("base_steps", 0)
        else:  # a finished run used as a starting point: its steps become the base
            self.base_steps = ck.get("base_steps", 0) + ck["step"]

    def update_ema(self, decay: float) -> None:
        if self.ema is None:
            return
        with torch.no_grad():
            for k, v in self.model.state_dict().items():
                if v.dtype.is_floating_point:
                    self.ema[k].mul_(decay).add_(v.detach().float(), alpha=1 - decay)

    def shipped_model(self) -> PFNTransformer:
        """The weights to ship: the EMA when it is on, else the raw weights."""
        if self.ema is None:
            return self.model
        out = PFNTransformer(self.model.config)
        out.load_state_dict(self.ema)
        return out


def _new_state(cfg: PretrainConfig, device: torch.device) -> RunState:
    t = cfg.train
    torch.manual_seed(cfg.seed)
    model = PFNTransformer(cfg.model).to(device)
    named = list(model.named_parameters())
    decay = [p for n, p in named if p.ndim >= 2 and "embedding" not in n]
    other = [p for n, p in named if not (p.ndim >= 2 and "embedding" not in n)]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": t.weight_decay}, {"params": other, "weight_decay": 0}],
        lr=t.lr,
        betas=(0.9, 0.98),
    )
    ema = None
    if t.ema > 0:
        ema = {k: v.detach().clone().float() for k, v in model.state_dict().items()}
    return RunState(model, opt, ema)


def _init_from(state: RunState, path: str, device: torch.device) -> None:
    """Start from a shippable weights file or from another run's ``last.pt``."""
    from engine.core.errors import CausalMixError

    if not Path(path).is_file():
        raise CausalMixError(f"init_from: file not found: {path}")
    blob = torch.load(path, map_location=device, weights_only=False)
    if "optimizer" in blob:  # a run checkpoint
        state.restore(blob, with_step=False)
    elif "state_dict" in blob:  # a shippable file: weights only, fresh optimizer
        state.model.load_state_dict(blob["state_dict"])
        if state.ema is not None:
            state.ema = {k: v.detach().clone().float() for k, v in blob["state_dict"].items()}
        meta = blob.get("meta", {})
        state.base_steps = int(meta.get("total_steps", meta.get("steps", 0)))
    else:
        raise CausalMixError(f"init_from: {path} is neither PFN weights nor a run checkpoint")
    print(f"initialised from {path} ({state.base_steps} earlier steps)", flush=True)


def _train_step(state: RunState, cfg: PretrainConfig, device: torch.device) -> tuple[float, float]:
    t = cfg.train
    batch = batch_for_step(cfg, state.base_steps + state.step, device).to(device)
    for group in state.opt.param_groups:
        group["lr"] = lr_at(state.step, t)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        loss, acc = task_loss(state.model, batch)
    state.opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(state.model.parameters(), t.grad_clip)
    state.opt.step()
    state.step += 1
    state.update_ema(t.ema)
    return loss.item(), acc.item()


def _evaluate(state: RunState, cfg: PretrainConfig, device: torch.device) -> dict:
    model = state.shipped_model().to(device)
    ev = {"step": state.base_steps + state.step, "elapsed": round(state.elapsed, 1)}
    ev.update(evaluate_prior(model, cfg, device))
    ev.update(evaluate_real(model, cfg, device))
    state.history.append(ev)
    text = "  ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in ev.items())
    print("eval " + text, flush=True)
    return ev


def _save(path: Path, blob: dict) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(blob, tmp)
    tmp.replace(path)


def run_pretraining(
    config_path: str | Path,
    output: str | Path | None = None,
    resume: bool = True,
    *,
    stop_at: int | None = None,
) -> Path:
    """Pretrain as the YAML config says; returns the path of the shippable weights.

    Resumes from ``run_dir/last.pt`` when it exists (unless ``resume`` is false), else starts
    from ``init_from`` when given. ``stop_at`` ends the run early after that step with a
    resumable checkpoint (as an interruption would) and returns the checkpoint's path.
    """
    cfg = load_config(config_path)
    t = cfg.train
    run_dir = Path(cfg.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    out_path = Path(output or cfg.output or run_dir / "final.pt")
    ckpt_path = run_dir / "last.pt"
    device = resolve_device(cfg.device)
    if device.type == "cpu":
        torch.set_num_threads(t.threads)
    state = _new_state(cfg, device)
    if resume and ckpt_path.exists():
        state.restore(torch.load(ckpt_path, map_location=device, weights_only=False))
        print(f"resumed from {ckpt_path} at step {state.step}", flush=True)
    elif cfg.init_from:
        _init_from(state, cfg.init_from, device)
    n_params = sum(p.numel() for p in state.model.parameters())
    print(f"pretraining {n_params:,} parameters on {device} for {t.steps} steps", flush=True)
    state.model.train()
    run_loss = run_acc = 0.0
    n_run = 0
    start = time.time() - state.elapsed
    while state.step < t.steps:
        loss, acc = _train_step(state, cfg, device)
        run_loss, run_acc, n_run = run_loss + loss, run_acc + acc, n_run + 1
        state.elapsed = time.time() - start
        step = state.step
        if step % t.log_every == 0 or step == t.steps:
            print(
                f"step {step:6d}  loss {run_loss / n_run:.4f}  acc {run_acc / n_run:.3f}  "
                f"lr {lr_at(step - 1, t):.2e}  {state.elapsed:7.0f}s",
                flush=True,
            )
            run_loss = run_acc = 0.0
            n_run = 0
        if step % t.eval_every == 0 or step == t.steps:
            _evaluate(state, cfg, device)
        if step % t.checkpoint_every == 0 or step == t.steps or step == stop_at:
            _save(ckpt_path, state.checkpoint(cfg))
        if stop_at is not None and step >= stop_at and step < t.steps:
            print(f"stopped at step {step}; resume from {ckpt_path}", flush=True)
            return ckpt_path
    path = save_shippable(state.shipped_model(), out_path, _meta(state, cfg, str(device)))
    print(f"saved weights to {path}", flush=True)
    return path


def _meta(state: RunState, cfg: PretrainConfig, device: str) -> dict:
    return {
        "steps": state.step,
        "total_steps": state.base_steps + state.step,
        "wall_seconds": round(state.elapsed, 1),
        "device": device,
        "config": _config_dict(cfg),
        "eval": state.history[-1] if state.history else {},
        "ema": cfg.train.ema > 0,
    }


def export_weights(run_checkpoint: str | Path, output: str | Path, ema: bool = True) -> Path:
    """Turn a resumable run checkpoint (``last.pt``) into a small shippable weights file
    (the EMA weights when the run kept them and ``ema`` is true)."""
    ck = torch.load(run_checkpoint, map_location="cpu", weights_only=False)
    cfg = ck["config"]
    arch = PFNConfig(**cfg["model"])
    model = PFNTransformer(arch)
    use_ema = ema and ck.get("ema") is not None
    model.load_state_dict(ck["ema"] if use_ema else ck["model"])
    history = ck.get("history", [])
    meta = {
        "steps": ck["step"],
        "total_steps": ck.get("base_steps", 0) + ck["step"],
        "wall_seconds": round(ck.get("elapsed", 0.0), 1),
        "device": "cpu",
        "config": cfg,
        "eval": history[-1] if history else {},
        "ema": use_ema,
    }
    return save_shippable(model, Path(output), meta)
