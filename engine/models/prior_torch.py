"""The PFN prior as batched torch tensor code (on the training device).

The same family of tasks as ``prior.py`` (random layered DAG; MLP-unit, decision-stump and
discretised mechanisms; warped, categorical, missing and pure-noise features; a target cut
into 2-10 imbalanced classes; context-row median imputation and standardisation), but every
task of a batch is computed at once with tensor operations instead of a Python loop per task
and per node. Tasks of one batch share the context size and the number of graph layers;
feature count, graph width, class count and all mechanisms vary per task (padding + masks).

Determinism: a batch is a function of ``(seed, step)`` and the device type: the generator is
seeded with ``seed * 1_000_003 + step`` on the device that samples (CPU and CUDA generators
draw different streams, each reproducible).

Beyond ``prior.py``: with probability ``random_slot_prob`` a task's features are placed at
random slots among ``max_features`` (not the leading ones), so every encoder column is
trained; ``TaskBatch.feature_mask`` says which slots hold features. Class proportions use a
log-normal weight per class (torch generators cannot drive a Dirichlet sampler). With
probability ``tree_prob`` a non-root node is a random axis-aligned tree on its parents, so
labels can hinge on interactions of thresholds; with ``target_encode_prob`` a task declares
its categorical features, which enter target-encoded.
"""

from __future__ import annotations

import math

import torch

from engine.models.prior import PriorConfig, TaskBatch
from engine.models.target_encoding import encoded_class, target_encode

_N_ACT = 8
_MAX_PARENTS = 4
_MAX_STUMPS = 7
_MAX_BINS = 6
_TREE_DEPTH = 4


def make_generator(seed: int, step: int, device: torch.device | str = "cpu") -> torch.Generator:
    """The generator of one batch: a function of ``(seed, step)`` (and the device type)."""
    gen = torch.Generator(device=device)
    gen.manual_seed(int(seed) * 1_000_003 + int(step))
    return gen


class _Draw:
    """Thin wrapper: every random draw goes through one explicit generator."""

    def __init__(self, gen: torch.Generator, device: torch.device) -> None:
        self.gen, self.dev = gen, device

    def u(self, *shape: int, lo: float = 0.0, hi: float = 1.0) -> torch.Tensor:
        return torch.rand(shape, generator=self.gen, device=self.dev) * (hi - lo) + lo

    def n(self, *shape: int) -> torch.Tensor:
        return torch.randn(shape, generator=self.gen, device=self.dev)

    def i(self, lo: int, hi: int, *shape: int) -> torch.Tensor:
        """Integers in ``[lo, hi)``."""
        return torch.randint(lo, hi, shape, generator=self.gen, device=self.dev)

    def loguniform(self, lo: float, hi: float, *shape: int) -> torch.Tensor:
        return torch.exp(self.u(*shape, lo=math.log(lo), hi=math.log(hi)))


def _standardise(a: torch.Tensor) -> torch.Tensor:
    """Per task and column over the rows (dim 1)."""
    sd = a.std(dim=1, keepdim=True, unbiased=False)
    return (a - a.mean(dim=1, keepdim=True)) / torch.where(sd > 1e-8, sd, torch.ones_like(sd))


def _activations(x: torch.Tensor, which: torch.Tensor) -> torch.Tensor:
    """Apply activation ``which[b, w]`` (0..7, as in ``prior._ACTIVATIONS``) to ``x[b, :, w]``."""
    out = torch.tanh(x)
    out = torch.where(which == 1, x.clamp(min=0), out)
    out = torch.where(which == 2, torch.sin(x), out)
    out = torch.where(which == 3, x * x, out)
    out = torch.where(which == 4, x.abs(), out)
    out = torch.where(which == 5, x, out)
    out = torch.where(which == 6, torch.sigmoid(4.0 * x), out)
    return torch.where(which == 7, torch.sign(x) * x.abs().sqrt(), out)


def _root_layer(d: _Draw, b: int, n: int, w: int) -> torch.Tensor:
    kind = d.i(0, 4, b, 1, w)
    u = d.u(b, n, w, lo=1e-6, hi=1 - 1e-6)
    out = d.n(b, n, w)
    out = torch.where(kind == 1, (u - 0.5) * 3.4, out)
    lap = -0.7 * torch.sign(u - 0.5) * torch.log1p(-2 * (u - 0.5).abs())
    out = torch.where(kind == 2, lap, out)
    mix = d.n(b, n, w) * 0.5 + torch.where(d.u(b, n, w) < 0.5, -1.5, 1.5)
    return torch.where(kind == 3, mix, out)


def _parents(d: _Draw, prev_active: torch.Tensor, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """1-4 parents per new node among the active earlier nodes, biased to recent ones.

    Returns parent indices ``(B, W, 4)`` and their weights (0 for unused slots).
    """
    b, p = prev_active.shape
    recent = torch.linspace(0.3, 1.0, p, device=d.dev) ** 2
    gumbel = -torch.log(-torch.log(d.u(b, w, p, lo=1e-9, hi=1 - 1e-9)))
    score = torch.log(recent) + gumbel
    score = score.masked_fill(~prev_active[:, None, :], float("-inf"))
    k = min(_MAX_PARENTS, p)
    idx = score.topk(k, dim=-1).indices  # (B, W, k)
    n_active = prev_active.sum(1).clamp(min=1)[:, None, None]
    n_par = torch.minimum(d.i(1, _MAX_PARENTS + 1, b, w, 1), n_active)
    used = torch.arange(k, device=d.dev)[None, None, :] < n_par
    coef = d.n(b, w, k) / n_par.float().sqrt() * used
    return idx, coef


def _splits(d: _Draw, prev: torch.Tensor, idx: torch.Tensor, coef: torch.Tensor, m: int,
            ) -> torch.Tensor:
    """``m`` random splits per node, each on one of the node's parents at the value of a
    random row: whether each row lies above each split, ``(B, N, W, m)``."""
    b, n, _ = prev.shape
    w, k = idx.shape[1], idx.shape[2]
    n_par = (coef != 0).sum(-1, keepdim=True).clamp(min=1)  # (B, W, 1)
    pick = (d.u(b, w, m) * n_par).long().clamp(max=k - 1)
    cols = idx.gather(2, pick)  # (B, W, m)
    vals = prev.gather(2, cols.reshape(b, 1, -1).expand(b, n, -1))  # (B, N, W*m)
    thr = vals.gather(1, d.i(0, n, b, 1, w * m))
    return (vals > thr).view(b, n, w, m)


def _stumps(d: _Draw, prev: torch.Tensor, idx: torch.Tensor, coef: torch.Tensor) -> torch.Tensor:
    """Sum of 2-7 decision stumps per node, each on one of the node's parents."""
    b, w = prev.shape[0], idx.shape[1]
    hits = _splits(d, prev, idx, coef, _MAX_STUMPS).float()
    n_stump = d.i(2, _MAX_STUMPS + 1, b, w, 1)
    wts = d.n(b, w, _MAX_STUMPS) * (torch.arange(_MAX_STUMPS, device=d.dev) < n_stump)
    return (hits * wts[:, None]).sum(-1)


def _trees(d: _Draw, prev: torch.Tensor, idx: torch.Tensor, coef: torch.Tensor) -> torch.Tensor:
    """A random axis-aligned tree of depth 2-4 per node: each split on one of the node's
    parents at the value of a random row, a normal value per leaf."""
    b, n, _ = prev.shape
    w = idx.shape[1]
    splits, leaves = 2**_TREE_DEPTH - 1, 2**_TREE_DEPTH
    right = _splits(d, prev, idx, coef, splits)
    pos = torch.zeros(b, n, w, 1, dtype=torch.long, device=d.dev)
    for _ in range(_TREE_DEPTH):  # heap order: the children of split t are 2t+1 and 2t+2
        pos = 2 * pos + 1 + right.gather(3, pos).long()
    shift = _TREE_DEPTH - d.i(2, _TREE_DEPTH + 1, b, 1, w, 1)  # shallower trees share leaves
    leaf = (pos - splits) >> shift
    value = d.n(b, 1, w, leaves).expand(b, n, w, leaves)
    return value.gather(3, leaf)[..., 0]


def _discretise(d: _Draw, pre: torch.Tensor) -> torch.Tensor:
    """Cut each node into 2-6 categories at random data values; a random value per category."""
    b, n, w = pre.shape
    code = _cut_codes(d, pre, _MAX_BINS, d.i(2, _MAX_BINS + 1, b, w))
    return d.n(b, _MAX_BINS, w).gather(1, code)


def _cut_codes(d: _Draw, x: torch.Tensor, max_bins: int, bins: torch.Tensor) -> torch.Tensor:
    """Interval index ``(B, N, C)`` of each value among ``bins - 1`` cuts per column, the cuts
    being the values of random rows (= quantiles at uniform random levels)."""
    b, n, c = x.shape
    rows = d.i(0, n, b, max_bins - 1, c)
    cuts = x.gather(1, rows).transpose(1, 2)  # (B, C, max_bins - 1)
    live = torch.arange(max_bins - 1, device=d.dev)[None, None] < (bins - 1)[..., None]
    cuts = cuts.masked_fill(~live, float("inf")).sort(dim=-1).values
    vals = x.transpose(1, 2).contiguous()
    return torch.searchsorted(cuts.contiguous(), vals).transpose(1, 2)


def _layer(d: _Draw, prev: torch.Tensor, prev_active: torch.Tensor, w: int,
           tree_prob: float = 0.0) -> torch.Tensor:
    """``W`` new nodes from the earlier nodes ``prev`` ``(B, N, P)``."""
    b, n, p = prev.shape
    idx, coef = _parents(d, prev_active, w)
    weights = torch.zeros(b, p, w, device=d.dev)
    weights.scatter_add_(1, idx.transpose(1, 2), coef.transpose(1, 2))
    pre = prev @ weights + d.n(b, 1, w) * 0.3
    kind = torch.multinomial(
        torch.tensor([0.7, 0.2, 0.1], device=d.dev), b * w, replacement=True, generator=d.gen
    ).view(b, 1, w)
    act = d.i(0, _N_ACT, b, 1, w)
    out = _activations(pre * d.u(b, 1, w, lo=0.5, hi=2.0), act)
    out = torch.where(kind == 1, _stumps(d, prev, idx, coef), out)
    out = torch.where(kind == 2, _discretise(d, pre), out)
    if tree_prob > 0:  # drawn after the other mechanisms: at 0 the stream is unchanged
        out = torch.where(d.u(b, 1, w) < tree_prob, _trees(d, prev, idx, coef), out)
    out = _standardise(out)
    return out + d.n(b, n, w) * d.loguniform(0.01, 0.8, b, 1, w)


def _graph(
    d: _Draw, b: int, n: int, n_graph: torch.Tensor, tree_prob: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """All nodes ``(B, N, L*W)``, their active mask ``(B, L*W)``, and the width ``W``."""
    n_layers = int(d.i(2, 6, 1))
    width = torch.ceil((n_graph + 1).float() * d.u(b, lo=1.0, hi=2.0) / n_layers).long() + 1
    width = width.clamp(min=2)
    w = int(width.max())
    active_layer = torch.arange(w, device=d.dev)[None, :] < width[:, None]  # (B, W)
    nodes = _root_layer(d, b, n, w)
    active = active_layer
    for _ in range(n_layers - 1):
        new = _layer(d, nodes, active, w, tree_prob)
        nodes = torch.cat([nodes, new], dim=2)
        active = torch.cat([active, active_layer], dim=1)
    return nodes, active, w


def _pick(d: _Draw, valid: torch.Tensor, k: int) -> torch.Tensor:
    """``k`` distinct random indices per row among ``valid`` (valid ones first)."""
    score = d.u(*valid.shape).masked_fill(~valid, -1.0)
    return score.topk(k, dim=-1).indices


def _classes(d: _Draw, nodes: torch.Tensor, active: torch.Tensor, w: int, k: torch.Tensor,
             max_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Labels ``(B, N)`` (a non-root node cut at random quantiles, or an argmax of scores)
    and the target node ``(B, 1)``."""
    b, n, m = nodes.shape
    kk = max_classes
    non_root = active.clone()
    non_root[:, :w] = False
    target = _pick(d, non_root, 1)  # (B, 1)
    v = nodes.gather(2, target[:, None, :].expand(b, n, 1))[..., 0]  # (B, N)
    cls = torch.arange(kk, device=d.dev)
    # Quantile cuts with log-normal class weights, floored at 3 %.
    props = torch.exp(d.n(b, kk) * d.u(b, 1, lo=0.2, hi=1.2)) * (cls[None] < k[:, None])
    props = props / props.sum(1, keepdim=True)
    props = torch.where(cls[None] < k[:, None], props.clamp(min=0.03), props)
    cum = torch.cumsum(props / props.sum(1, keepdim=True), 1)[:, : kk - 1]
    srt = v.sort(dim=1).values
    cuts = srt.gather(1, (cum * n).long().clamp(0, n - 1))
    cuts = cuts.masked_fill(cls[None, : kk - 1] >= (k - 1)[:, None], float("inf"))
    lab = (v[:, :, None] >= cuts[:, None, :]).sum(-1)
    scramble = (d.u(b, 1) < 0.3) & (k[:, None] > 1)
    perm = _perm_of_first(d, k, kk)
    lab = torch.where(scramble, perm.gather(1, lab), lab)
    # Multiclass alternative: argmax of random linear scores over 4 nodes.
    pick = _pick(d, active, 4)
    sel = nodes.gather(2, pick[:, None, :].expand(b, n, 4))
    scores = sel @ d.n(b, 4, kk) + d.n(b, 1, kk) * 0.5
    scores = scores.masked_fill(cls[None, None] >= k[:, None, None], float("-inf"))
    use_arg = (k > 2)[:, None] & (d.u(b, 1) < 0.3)
    return torch.where(use_arg, scores.argmax(-1), lab), target


def _perm_of_first(d: _Draw, k: torch.Tensor, size: int) -> torch.Tensor:
    """Per row a permutation of ``0..size-1`` that maps ``0..k-1`` onto ``0..k-1``."""
    idx = torch.arange(size, device=d.dev)[None]
    score = d.u(k.shape[0], size) + (idx >= k[:, None]) * 2.0
    return score.argsort(dim=1)


def _merge_absent(
    d: _Draw, y: torch.Tensor, n_ctx: int, kk: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Classes absent from the context become random present ones; labels randomly renamed."""
    b = y.shape[0]
    present = torch.zeros(b, kk, dtype=torch.bool, device=d.dev)
    present.scatter_(1, y[:, :n_ctx], True)
    n_present = present.sum(1)
    order = (d.u(b, kk) + (~present) * 2.0).argsort(1)  # present classes first, shuffled
    rank = order.argsort(1)  # new name of each class
    alt = (d.u(b, kk, kk) + present[:, None, :] * 2.0).argmax(-1)  # a random present class
    target = torch.where(present, torch.arange(kk, device=d.dev)[None], alt)
    mapping = rank.gather(1, target)
    return mapping.gather(1, y), n_present


def _features(d: _Draw, nodes: torch.Tensor, active: torch.Tensor, n_graph: torch.Tensor,
              f: torch.Tensor, fmax: int) -> torch.Tensor:
    """``(B, N, fmax)``: graph nodes, then pure-noise columns, then zeros beyond ``f``."""
    b, n, m = nodes.shape
    k = min(fmax, m)
    pick = _pick(d, active, k)
    x = nodes.gather(2, pick[:, None, :].expand(b, n, k))
    if k < fmax:
        x = torch.cat([x, torch.zeros(b, n, fmax - k, device=d.dev)], dim=2)
    col = torch.arange(fmax, device=d.dev)[None, None]
    x = torch.where(col < n_graph[:, None, None], x, d.n(b, n, fmax))
    return x * (col < f[:, None, None])


def _warp(d: _Draw, x: torch.Tensor) -> torch.Tensor:
    """Skewed / heavy-tailed / count-like versions of every column (choose with a mask)."""
    b, _, f = x.shape
    v = x / (x.std(dim=1, keepdim=True, unbiased=False) + 1e-8)
    kind = d.i(0, 4, b, 1, f)
    out = torch.exp((v * d.u(b, 1, f, lo=0.5, hi=2.0)).clamp(max=30))
    out = torch.where(kind == 1, v**3, out)
    powered = torch.sign(v) * v.abs() ** d.u(b, 1, f, lo=1.5, hi=3.0) * 10
    out = torch.where(kind == 2, powered, out)
    counts = torch.round(torch.exp(v.clamp(max=30)) * d.u(b, 1, f, lo=1.0, hi=20.0))
    return torch.where(kind == 3, counts, out)


def _categorical(d: _Draw, x: torch.Tensor) -> torch.Tensor:
    """2-10 integer codes per column, cut at random quantiles, codes in a random order."""
    b, n, f = x.shape
    k = d.i(2, 11, b, f)
    code = _cut_codes(d, x, 10, k)
    score = d.u(b, 10, f) + (torch.arange(10, device=d.dev)[None, :, None] >= k[:, None]) * 2.0
    return score.argsort(dim=1).gather(1, code).float()


def _observe(d: _Draw, x: torch.Tensor, cfg: PriorConfig, f: torch.Tensor,
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """Measurement noise, warps, categorical codes and MCAR missing values (NaN); also which
    columns hold categorical codes, ``(B, F)``."""
    b, n, fm = x.shape
    x = x + d.n(b, n, fm) * d.u(b, 1, 1, lo=0.0, hi=0.3)
    live = torch.arange(fm, device=d.dev)[None, None] < f[:, None, None]
    warp = (d.u(b, 1, 1) < cfg.warp_prob) & (d.u(b, 1, fm) < d.u(b, 1, 1, lo=0.1, hi=0.6))
    x = torch.where(warp & live, _warp(d, x), x)
    cat = (d.u(b, 1, 1) < cfg.categorical_prob) & (d.u(b, 1, fm) < d.u(b, 1, 1, lo=0.1, hi=1.0))
    x = torch.where(cat & live, _categorical(d, x), x)
    rates = d.u(b, 1, fm, lo=0.0, hi=0.5) * (d.u(b, 1, fm) < 0.5)
    miss = (d.u(b, 1, 1) < cfg.missing_prob) & (d.u(b, n, fm) < rates) & live
    return x.masked_fill(miss, float("nan")), (cat & live)[:, 0]


def preprocess_like_engine(x: torch.Tensor, n_ctx: int) -> torch.Tensor:
    """Median-impute and standardise ``(B, N, F)`` with the context rows' statistics."""
    med = torch.nanmedian(x[:, :n_ctx], dim=1, keepdim=True).values
    med = torch.nan_to_num(med, nan=0.0)
    x = torch.where(torch.isnan(x), med, x)
    ctx = x[:, :n_ctx]
    mean = ctx.mean(dim=1, keepdim=True)
    sd = ctx.std(dim=1, keepdim=True, unbiased=False)
    x = (x - mean) / torch.where(sd > 1e-8, sd, torch.ones_like(sd))
    return torch.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)


def _place(d: _Draw, x: torch.Tensor, f: torch.Tensor, random_prob: float
           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Shuffle each task's ``f`` columns into the leading slots, or (with ``random_prob``)
    into random slots among all; returns the placed rows, the slot mask ``(B, F)`` and the
    slot of each column ``(B, F)``."""
    b, n, fm = x.shape
    col = torch.arange(fm, device=d.dev)[None]
    leading = d.u(b, 1) >= random_prob
    score = d.u(b, fm) + ((col >= f[:, None]) & leading) * 2.0
    dst = score.argsort(dim=1)  # a full permutation: column j goes to slot dst[j]
    out = torch.zeros_like(x).scatter_(2, dst[:, None, :].expand(b, n, fm), x)
    mask = torch.zeros(b, fm, dtype=torch.bool, device=d.dev).scatter_(1, dst, col < f[:, None])
    return out, mask, dst


def _declare_categories(d: _Draw, x: torch.Tensor, y: torch.Tensor, n_classes: torch.Tensor,
                        cat_slots: torch.Tensor, n_ctx: int, prob: float) -> torch.Tensor:
    """With chance ``prob`` per task, its categorical columns are declared: target-encoded on
    the task's context rows (``target_encode``, the class ``encoded_class`` picks), as the
    PFN encodes a table's declared category columns at prediction time."""
    declared = (d.u(x.shape[0]) < prob) & cat_slots.any(dim=1)
    for t in torch.nonzero(declared).flatten().tolist():
        cols = torch.nonzero(cat_slots[t]).flatten().tolist()
        cls = encoded_class(y[t, :n_ctx], int(n_classes[t]))
        ctx, qry = target_encode(x[t, :n_ctx], y[t, :n_ctx], x[t, n_ctx:], cols, cls)
        x[t] = torch.cat([ctx, qry])
    return x


@torch.no_grad()
def sample_batch_torch(gen: torch.Generator, cfg: PriorConfig, batch_size: int, n_ctx: int,
                       n_query: int | None = None, random_slot_prob: float | None = None
                       ) -> TaskBatch:
    """``batch_size`` tasks with ``n_ctx`` context and ``n_query`` query rows, on ``gen``'s
    device; features are zero outside ``TaskBatch.feature_mask``. ``random_slot_prob``
    defaults to ``cfg.random_slot_prob``."""
    dev = torch.device(gen.device)
    d = _Draw(gen, dev)
    n = n_ctx + (cfg.n_query if n_query is None else n_query)
    b, fm = batch_size, cfg.max_features
    lo, hi = math.log(cfg.min_features), math.log(cfg.max_features + 1)
    f = torch.exp(d.u(b, lo=lo, hi=hi)).long().clamp(cfg.min_features, cfg.max_features)
    k = torch.where(d.u(b) < cfg.binary_prob, 2, d.i(3, cfg.max_classes + 1, b))
    has_noise = (d.u(b) < cfg.noise_feature_prob) & (f > 2)
    n_noise = (d.u(b) * (f // 3).clamp(min=1)).long() + 1
    n_graph = f - torch.where(has_noise, n_noise, 0)
    nodes, active, w = _graph(d, b, n, n_graph, cfg.tree_prob)
    y, target = _classes(d, nodes, active, w, k, cfg.max_classes)
    not_target = active.scatter(1, target, False)
    fb = int(f.max())  # generate only the batch's widest feature count, pad at the end
    x = _features(d, nodes, not_target, n_graph, f, fb)
    x, cat = _observe(d, x, cfg, f)
    x = preprocess_like_engine(x, n_ctx)
    x = x * (torch.arange(fb, device=dev)[None, None] < f[:, None, None])
    if fb < fm:
        x = torch.cat([x, torch.zeros(b, n, fm - fb, device=dev)], dim=2)
        cat = torch.cat([cat, torch.zeros(b, fm - fb, dtype=torch.bool, device=dev)], dim=1)
    slot_prob = cfg.random_slot_prob if random_slot_prob is None else random_slot_prob
    x, mask, dst = _place(d, x, f, slot_prob)
    y, n_present = _merge_absent(d, y, n_ctx, cfg.max_classes)
    if cfg.target_encode_prob > 0:  # drawn last: tasks without it keep their earlier streams
        cat_slots = torch.zeros_like(cat).scatter_(1, dst, cat)
        x = _declare_categories(d, x, y, n_present, cat_slots, n_ctx, cfg.target_encode_prob)
    return TaskBatch(x.float(), y.long(), f.long(), n_present.long(), n_ctx, mask)


def sample_context_size_torch(gen: torch.Generator, lo: int, hi: int) -> int:
    """Log-uniform context size in ``[lo, hi]`` from ``gen``."""
    u = float(torch.rand(1, generator=gen, device=gen.device))
    return int(min(hi, max(lo, math.exp(math.log(lo) + u * (math.log(hi + 1) - math.log(lo))))))
