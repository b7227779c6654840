"""Pretrain the embedded PFN on the synthetic SCM prior.

``run_pretraining(config)`` reads a YAML file (see ``pretrain_default.yaml``), trains with
AdamW and a warmup + cosine schedule, evaluates periodically on held-out prior tasks and on
real scikit-learn datasets, writes a resumable checkpoint every ``checkpoint_every`` steps and
finally a small shippable file (weights + architecture config + evaluation) to ``output``.
The prior batch of step ``s`` is drawn from ``default_rng([seed, s])``, so a resumed run
sees exactly the batches an uninterrupted one would.
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

from engine.errors import SpecError
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
        elif key in ("seed", "device", "run_dir", "output"):
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
    for name in cfg.eval.datasets:
        if name not in _DATASETS:
            raise SpecError(source, "eval.datasets", f"unknown dataset {name!r} ({_DATASETS})")


# ---------------------------------------------------------------------------- training pieces
def lr_at(step: int, t: TrainConfig) -> float:
    """Linear warmup, then cosine decay to ``min_lr_ratio * lr``."""
    if step < t.warmup_steps:
        return t.lr * (step + 1) / t.warmup_steps
    frac = (step - t.warmup_steps) / max(1, t.steps - t.warmup_steps)
    cos = 0.5 * (1 + math.cos(math.pi * min(1.0, frac)))
    return t.lr * (t.min_lr_ratio + (1 - t.min_lr_ratio) * cos)


def batch_for_step(cfg: PretrainConfig, step: int) -> TaskBatch:
    """The (deterministic) prior batch of ``step``."""
    rng = np.random.default_rng([cfg.seed, step])
    t = cfg.train
    n_ctx = sample_context_size(rng, t.min_context, t.max_context)
    bs = max(1, t.tokens_per_batch // (n_ctx + cfg.prior.n_query))
    return sample_batch(rng, cfg.prior, bs, n_ctx)


def task_loss(model: PFNTransformer, batch: TaskBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean query cross-entropy and accuracy of a batch."""
    c = batch.n_ctx
    logits = model(
        batch.x[:, :c], batch.y[:, :c], batch.x[:, c:], batch.n_classes, batch.n_features
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
def run_pretraining(
    config_path: str | Path,
    output: str | Path | None = None,
    resume: bool = True,
    *,
    stop_at: int | None = None,
) -> Path:
    """Pretrain as the YAML config says; returns the path of the shippable weights.

    ``stop_at`` ends the run early after that step with a resumable checkpoint (as an
    interruption would) and returns the checkpoint's path instead.
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

    torch.manual_seed(cfg.seed)
    model = PFNTransformer(cfg.model).to(device)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in n]
    other = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embedding" not in n)]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": t.weight_decay}, {"params": other, "weight_decay": 0}],
        lr=t.lr,
        betas=(0.9, 0.98),
    )
    step, elapsed, history = 0, 0.0, []
    if resume and ckpt_path.exists():
        ck = torch.load(ckpt_path, map_location=device, weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        step, elapsed, history = ck["step"], ck.get("elapsed", 0.0), ck.get("history", [])
        print(f"resumed from {ckpt_path} at step {step}", flush=True)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"pretraining {n_params:,} parameters on {device} for {t.steps} steps", flush=True)

    def save_checkpoint() -> None:
        tmp = ckpt_path.with_suffix(".tmp")
        torch.save(
            {
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "step": step,
                "config": _config_dict(cfg),
                "elapsed": elapsed,
                "history": history,
            },
            tmp,
        )
        tmp.replace(ckpt_path)

    use_amp = device.type == "cuda"
    model.train()
    run_loss = run_acc = 0.0
    n_run = 0
    start = time.time() - elapsed
    while step < t.steps:
        batch = batch_for_step(cfg, step).to(device)
        for group in opt.param_groups:
            group["lr"] = lr_at(step, t)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
            loss, acc = task_loss(model, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
        opt.step()
        step += 1
        run_loss += loss.item()
        run_acc += acc.item()
        n_run += 1
        elapsed = time.time() - start
        if step % t.log_every == 0 or step == t.steps:
            print(
                f"step {step:6d}  loss {run_loss / n_run:.4f}  acc {run_acc / n_run:.3f}  "
                f"lr {lr_at(step - 1, t):.2e}  {elapsed:7.0f}s",
                flush=True,
            )
            run_loss = run_acc = 0.0
            n_run = 0
        if step % t.eval_every == 0 or step == t.steps:
            ev = {"step": step, "elapsed": round(elapsed, 1)}
            ev.update(evaluate_prior(model, cfg, device))
            ev.update(evaluate_real(model, cfg, device))
            history.append(ev)
            print(
                "eval "
                + "  ".join(
                    f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in ev.items()
                ),
                flush=True,
            )
        if step % t.checkpoint_every == 0 or step == t.steps or step == stop_at:
            save_checkpoint()
        if stop_at is not None and step >= stop_at and step < t.steps:
            print(f"stopped at step {step}; resume from {ckpt_path}", flush=True)
            return ckpt_path
    meta = {
        "steps": step,
        "wall_seconds": round(elapsed, 1),
        "device": str(device),
        "config": _config_dict(cfg),
        "eval": history[-1] if history else {},
    }
    path = save_shippable(model, out_path, meta)
    print(f"saved weights to {path}", flush=True)
    return path


def export_weights(run_checkpoint: str | Path, output: str | Path) -> Path:
    """Turn a resumable run checkpoint (``last.pt``) into a small shippable weights file."""
    ck = torch.load(run_checkpoint, map_location="cpu", weights_only=False)
    arch = PFNConfig(**ck["config"]["model"])
    model = PFNTransformer(arch)
    model.load_state_dict(ck["model"])
    history = ck.get("history", [])
    meta = {
        "steps": ck["step"],
        "wall_seconds": round(ck.get("elapsed", 0.0), 1),
        "device": "cpu",
        "config": ck["config"],
        "eval": history[-1] if history else {},
    }
    return save_shippable(model, Path(output), meta)
