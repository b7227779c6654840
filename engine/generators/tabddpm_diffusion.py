"""The torch side of ``tabddpm``: schedule, class-conditional MLP denoiser, training, sampling.

Mixed-type diffusion as in TabDDPM (Kotelnikov et al., ICML 2023; the official code's
``GaussianMultinomialDiffusion``):

* numeric columns (already quantile-normalised to N(0, 1)): Gaussian diffusion, the network
  predicts the noise (MSE loss), ancestral sampling with the fixed "large" variance;
* categorical columns (one-hot blocks): multinomial diffusion in log space (Hoogeboom et al.,
  2021), ``q(x_t | x_0) = Cat(abar_t x_0 + (1 - abar_t) / K)``; the network predicts ``x_0``
  logits per block and ``p(x_{t-1} | x_t) = q(x_{t-1} | x_t, x0_hat)``; loss the KL to the true
  posterior (decoder NLL at ``t = 0``), divided by the number of categorical columns;
* both share one cosine noise schedule and one MLP whose input is projected and added to the
  sinusoidal time embedding plus the class-label embedding (the class is the condition, never
  a diffused column).

All randomness comes from explicit ``torch.Generator`` objects (weights initialised under a
forked, seeded global RNG), and every op runs on one device, so a seed fixes the bits.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

_EPS = 1e-30
_X0_BOUND = 5.2  # QuantileTransformer's normal output lies in about [-5.2, 5.2]


@dataclass(frozen=True)
class DiffusionConfig:
    """Sizes and training settings of one TabDDPM model."""

    n_num: int
    cat_sizes: tuple[int, ...]
    n_classes: int
    timesteps: int = 1000
    layers: int = 3
    width: int = 256
    dim_t: int = 128
    steps: int = 3000
    lr: float = 2e-3
    batch_size: int = 256
    weight_decay: float = 1e-5
    ema: float = 0.999


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of integer timesteps (as in the DDPM / TabDDPM code)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32,
                                                            device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


class Denoiser(nn.Module):
    """MLP on ``proj(x) + time_mlp(emb(t)) + silu(label_emb(y))`` (TabDDPM's MLPDiffusion)."""

    def __init__(self, d_in: int, n_classes: int, layers: int, width: int, dim_t: int) -> None:
        super().__init__()
        self.dim_t = dim_t
        self.proj = nn.Linear(d_in, dim_t)
        self.time_mlp = nn.Sequential(nn.Linear(dim_t, dim_t), nn.SiLU(), nn.Linear(dim_t, dim_t))
        self.label_emb = nn.Embedding(max(n_classes, 1), dim_t)
        blocks: list[nn.Module] = []
        d = dim_t
        for _ in range(layers):
            blocks += [nn.Linear(d, width), nn.ReLU()]
            d = width
        blocks.append(nn.Linear(d, d_in))
        self.mlp = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        emb = self.time_mlp(timestep_embedding(t, self.dim_t))
        emb = emb + nn.functional.silu(self.label_emb(y))
        return self.mlp(self.proj(x) + emb)


class Schedule:
    """Cosine schedule (Nichol & Dhariwal) and the derived Gaussian / multinomial terms."""

    def __init__(self, timesteps: int, device: torch.device) -> None:
        T = int(timesteps)
        s = 0.008
        f = np.cos((np.arange(T + 1) / T + s) / (1 + s) * np.pi / 2) ** 2
        betas = np.clip(1 - f[1:] / f[:-1], 0.0, 0.999)
        alphas = 1.0 - betas
        abar = np.cumprod(alphas)
        abar_prev = np.append(1.0, abar[:-1])
        post_var = betas * (1 - abar_prev) / (1 - abar)
        log_alpha = np.log(alphas)
        log_abar = np.cumsum(log_alpha)
        terms = {
            "sqrt_abar": np.sqrt(abar), "sqrt_1m_abar": np.sqrt(1 - abar),
            "sqrt_recip_abar": np.sqrt(1 / abar), "sqrt_recipm1_abar": np.sqrt(1 / abar - 1),
            "coef_x0": betas * np.sqrt(abar_prev) / (1 - abar),
            "coef_xt": (1 - abar_prev) * np.sqrt(alphas) / (1 - abar),
            "log_var": np.log(np.append(post_var[1], betas[1:])),
            "log_alpha": log_alpha, "log_1m_alpha": np.log(np.maximum(1 - alphas, 1e-40)),
            "log_abar": log_abar, "log_1m_abar": np.log(np.maximum(1 - np.exp(log_abar), 1e-40)),
        }
        self.T = T
        for k, v in terms.items():
            setattr(self, k, torch.as_tensor(v, dtype=torch.float32, device=device))

    def at(self, name: str, t: torch.Tensor) -> torch.Tensor:
        return getattr(self, name)[t][:, None]


class CatBlocks:
    """Per-block (one block per categorical column) log-space helpers."""

    def __init__(self, sizes: tuple[int, ...], device: torch.device) -> None:
        self.slices = []
        start = 0
        for k in sizes:
            self.slices.append(slice(start, start + k))
            start += k
        self.width = start
        self.log_k = torch.as_tensor(np.concatenate([np.full(k, math.log(k)) for k in sizes])
                                     if sizes else np.zeros(0), dtype=torch.float32, device=device)

    def log_softmax(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.cat([torch.log_softmax(logits[:, s], dim=1) for s in self.slices], dim=1)

    def normalise(self, log_p: torch.Tensor) -> torch.Tensor:
        return torch.cat([log_p[:, s] - torch.logsumexp(log_p[:, s], dim=1, keepdim=True)
                          for s in self.slices], dim=1)

    def sample(self, log_p: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """One-hot draws (as log one-hot) by the Gumbel-max trick, block by block."""
        u = torch.rand(log_p.shape, generator=gen, device=log_p.device)
        z = log_p - torch.log(-torch.log(u + _EPS) + _EPS)
        out = torch.zeros_like(log_p)
        for s in self.slices:
            idx = z[:, s].argmax(dim=1, keepdim=True)
            out[:, s] = torch.zeros_like(z[:, s]).scatter_(1, idx, 1.0)
        return torch.log(out.clamp(min=_EPS))

    def codes(self, log_onehot: torch.Tensor) -> torch.Tensor:
        return torch.stack([log_onehot[:, s].argmax(dim=1) for s in self.slices], dim=1)


def q_pred(sch: Schedule, blk: CatBlocks, log_x0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``log q(x_t | x_0)``."""
    return torch.logaddexp(log_x0 + sch.at("log_abar", t), sch.at("log_1m_abar", t) - blk.log_k)


def q_posterior(sch: Schedule, blk: CatBlocks, log_x0: torch.Tensor, log_xt: torch.Tensor,
                t: torch.Tensor) -> torch.Tensor:
    """``log q(x_{t-1} | x_t, x_0)`` (``x_0`` itself at ``t = 0``)."""
    prev = q_pred(sch, blk, log_x0, (t - 1).clamp(min=0))
    prev = torch.where((t == 0)[:, None], log_x0, prev)
    one_step = torch.logaddexp(log_xt + sch.at("log_alpha", t),
                               sch.at("log_1m_alpha", t) - blk.log_k)
    return blk.normalise(prev + one_step)


def training_loss(model: Denoiser, sch: Schedule, blk: CatBlocks, x_num: torch.Tensor,
                  log_x_cat: torch.Tensor, y: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Gaussian MSE on the noise plus the multinomial KL per categorical column."""
    n = len(y)
    t = torch.randint(0, sch.T, (n,), generator=gen, device=y.device)
    noise = torch.randn(x_num.shape, generator=gen, device=y.device)
    xt_num = sch.at("sqrt_abar", t) * x_num + sch.at("sqrt_1m_abar", t) * noise
    log_xt = blk.sample(q_pred(sch, blk, log_x_cat, t), gen) if blk.slices else log_x_cat
    out = model(torch.cat([xt_num, log_xt.exp()], dim=1), t, y)
    n_num = x_num.shape[1]
    loss = ((out[:, :n_num] - noise) ** 2).mean() if n_num else out.sum() * 0.0
    if blk.slices:
        log_x0_hat = blk.log_softmax(out[:, n_num:])
        true = q_posterior(sch, blk, log_x_cat, log_xt, t)
        pred = q_posterior(sch, blk, log_x0_hat, log_xt, t)
        kl = (true.exp() * (true - pred)).sum(dim=1)
        nll = -(log_x_cat.exp() * pred).sum(dim=1)
        cat = torch.where(t == 0, nll, kl) / len(blk.slices)
        loss = loss + cat.mean()
    return loss


def train(cfg: DiffusionConfig, x_num: np.ndarray, x_cat: np.ndarray, y: np.ndarray,
          seed: int, device: torch.device) -> Denoiser:
    """Train a denoiser; returns the EMA weights on the CPU, in eval mode."""
    blk = CatBlocks(cfg.cat_sizes, device)
    sch = Schedule(cfg.timesteps, device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Denoiser(cfg.n_num + blk.width, cfg.n_classes, cfg.layers, cfg.width, cfg.dim_t)
    model = model.to(device)
    ema = copy.deepcopy(model).requires_grad_(False)
    gen = torch.Generator(device=device).manual_seed(seed)
    num = torch.as_tensor(x_num, dtype=torch.float32, device=device)
    cat = torch.log(one_hot(x_cat, cfg.cat_sizes, device).clamp(min=_EPS))
    lab = torch.as_tensor(y, dtype=torch.long, device=device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    batch = min(cfg.batch_size, len(lab))
    for step in range(cfg.steps):
        for group in opt.param_groups:  # linear decay to 0, as in the official trainer
            group["lr"] = cfg.lr * (1 - step / cfg.steps)
        idx = torch.randint(0, len(lab), (batch,), generator=gen, device=device)
        loss = training_loss(model, sch, blk, num[idx], cat[idx], lab[idx], gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        decay = min(cfg.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            for pe, pm in zip(ema.parameters(), model.parameters()):
                pe.mul_(decay).add_(pm.detach(), alpha=1 - decay)
    return ema.cpu().eval()


def one_hot(codes: np.ndarray, sizes: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """Integer codes (rows x columns) to concatenated one-hot blocks."""
    parts = [nn.functional.one_hot(torch.as_tensor(codes[:, j], dtype=torch.long), k).float()
             for j, k in enumerate(sizes)]
    out = torch.cat(parts, dim=1) if parts else torch.zeros((len(codes), 0))
    return out.to(device)


@torch.no_grad()
def sample(model: Denoiser, cfg: DiffusionConfig, y: np.ndarray, seed: int,
           device: torch.device, batch: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Ancestral sampling for the given class codes: ``(numerics, category codes)``."""
    model = model.to(device)
    blk, sch = CatBlocks(cfg.cat_sizes, device), Schedule(cfg.timesteps, device)
    gen = torch.Generator(device=device).manual_seed(seed)
    nums, cats = [], []
    for start in range(0, len(y), batch):
        lab = torch.as_tensor(y[start:start + batch], dtype=torch.long, device=device)
        x, log_z = _reverse(model, sch, blk, cfg.n_num, lab, gen)
        nums.append(x.cpu().numpy().astype(np.float64))
        cats.append(blk.codes(log_z).cpu().numpy() if blk.slices
                    else np.zeros((len(lab), 0), dtype=np.int64))
    model.cpu()
    return np.vstack(nums), np.vstack(cats)


def _reverse(model: Denoiser, sch: Schedule, blk: CatBlocks, n_num: int, lab: torch.Tensor,
             gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    n, dev = len(lab), lab.device
    x = torch.randn((n, n_num), generator=gen, device=dev)
    log_z = blk.sample(torch.zeros((n, blk.width), device=dev) - blk.log_k, gen)
    for i in reversed(range(sch.T)):
        t = torch.full((n,), i, dtype=torch.long, device=dev)
        out = model(torch.cat([x, log_z.exp()], dim=1), t, lab)
        eps = out[:, :n_num]
        x0 = sch.at("sqrt_recip_abar", t) * x - sch.at("sqrt_recipm1_abar", t) * eps
        x0 = x0.clamp(-_X0_BOUND, _X0_BOUND)  # DDPM's clip_denoised, at the normal scores' range
        mean = sch.at("coef_x0", t) * x0 + sch.at("coef_xt", t) * x
        noise = torch.randn(x.shape, generator=gen, device=dev)
        x = mean + (i > 0) * torch.exp(0.5 * sch.at("log_var", t)) * noise
        if blk.slices:
            log_x0_hat = blk.log_softmax(out[:, n_num:])
            log_z = blk.sample(q_posterior(sch, blk, log_x0_hat, log_z, t), gen)
    return x, log_z
