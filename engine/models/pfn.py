"""The embedded PFN backend (``load_model("pfn")``), with its bundled pretrained weights.

The weights ship as package data (``engine/models/checkpoints/pfn_small.pt``); they were
produced by ``causalmix pretrain engine/models/pretrain_default.yaml`` (see
``docs/model_card.md``).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from engine.core.errors import CausalMixError
from engine.models.architecture import PFNConfig, PFNTransformer, mid_rank_sums
from engine.models.base import InContextClassifier, register_model
from engine.models.feature_relevance import relevant_features
from engine.models.target_encoding import (
    CROSS_FOLDS,
    code_like_columns,
    encoded_class,
    target_encode,
)

BUNDLED_CHECKPOINT = "pfn_small.pt"
TRANSFORMS = ("none", "mixed")  # what the passes of the ensemble see (see forward_episode)
CATEGORICALS = ("target", "codes", "mixed")  # how category columns enter (see forward_episode)
ENCODE_CLASS = ("frequent", "cycle")  # which class's shares target_encode gives (multiclass)
ENCODE_FIT = ("in_sample", "cross_fit")  # whose labels a context row's shares use (target_encode)
FEATURE_SELECT = ("none", "relevant")  # which columns the odd passes see (relevant_features)
# The allowed values of the options that take one of a few (checked here and at validate time).
CHOICES = {"slots": ("leading", "spread"), "transforms": TRANSFORMS, "categoricals": CATEGORICALS,
           "encode_class": ENCODE_CLASS, "encode_fit": ENCODE_FIT,
           "feature_select": FEATURE_SELECT}
# The inference options and the values a checkpoint without its own ``meta["inference"]`` gets
# (every checkpoint shipped before the option existed): a checkpoint file names its defaults, so
# a sweep pinned to a weights file keeps its predictions and cache keys when the bundled
# checkpoint's defaults change.
LEGACY_INFERENCE: dict[str, Any] = {"n_ensemble": 4, "slots": "leading", "transforms": "none",
                                    "categoricals": "target", "encode_class": "frequent",
                                    "integer_levels": 0, "encode_fit": "in_sample",
                                    "feature_select": "none"}


def bundled_checkpoint_path() -> Path:
    """Filesystem path of the checkpoint shipped with the package."""
    ref = resources.files("engine.models").joinpath("checkpoints", BUNDLED_CHECKPOINT)
    return Path(str(ref))


def load_weights(path: str | Path) -> tuple[PFNConfig, dict[str, torch.Tensor], dict]:
    """Read a shippable PFN file: architecture config, weights, metadata."""
    path = Path(path)
    if not path.is_file():
        raise CausalMixError(f"PFN checkpoint not found: {path}")
    blob = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(blob, dict) or "state_dict" not in blob or "arch" not in blob:
        raise CausalMixError(f"{path} is not a PFN checkpoint (no 'arch'/'state_dict')")
    return PFNConfig(**blob["arch"]), blob["state_dict"], blob.get("meta", {})


class EmbeddedPFN(InContextClassifier):
    """The project's own small prior-fitted transformer (rows as tokens)."""

    def __init__(
        self,
        net: PFNTransformer,
        device: str | torch.device = "cpu",
        meta: dict | None = None,
        **inference: Any,
    ) -> None:
        super().__init__(device)
        self.max_classes = net.config.max_classes
        self.max_features = net.config.max_features
        self.net = net.to(self.device).eval()
        self.meta = meta or {}
        chosen = inference_options(self.meta, inference)
        for key, value in chosen.items():
            if key in CHOICES and value not in CHOICES[key]:
                raise CausalMixError(f"pfn: {key} must be one of {CHOICES[key]}, got {value!r}")
        self.n_ensemble = max(1, int(chosen["n_ensemble"]))
        self.integer_levels = max(0, int(chosen["integer_levels"]))
        self.slots, self.transforms = chosen["slots"], chosen["transforms"]
        self.categoricals, self.encode_class = chosen["categoricals"], chosen["encode_class"]
        self.encode_fit, self.feature_select = chosen["encode_fit"], chosen["feature_select"]

    @property
    def module(self) -> nn.Module:
        return self.net

    def forward_episode(
        self, X_ctx: torch.Tensor, y_ctx: torch.Tensor, X_qry: torch.Tensor, n_classes: int,
        categorical: np.ndarray | None = None,
    ) -> torch.Tensor:
        """Logits ``(n_query, n_classes)``; differentiable in the module's parameters.

        It averages the log-probabilities of ``n_ensemble`` passes, each with a fixed
        pseudo-random permutation of the feature columns and of the class labels (the row
        encoder is not permutation invariant); in training mode too, so that fine-tuning
        improves the predictor that is used (a single pass when ``n_ensemble`` is 1). With
        ``slots="spread"`` the passes after the first put the features at random encoder slots
        among ``max_features`` instead of permuting them within the leading slots. With
        ``transforms="mixed"`` every second pass sees normal scores of the features
        (``rank_gauss``) instead of the features as given. With ``categoricals="target"`` the
        ``categorical`` columns enter as smoothed class shares of their level among the context
        rows (``target_encode``; which class: ``encoded_class``), in every pass. With
        ``feature_select="relevant"`` the odd passes see only the columns that
        ``relevant_features`` finds informative on the context rows, in the leading slots.
        """
        if n_classes > self.max_classes:
            raise CausalMixError(f"EmbeddedPFN handles at most {self.max_classes} classes")
        x_ctx = X_ctx.to(self.device, torch.float32)
        y = y_ctx.to(self.device, torch.long)
        x_qry = X_qry.to(self.device, torch.float32)
        cat = self._category_columns(categorical, x_ctx)
        if self.n_ensemble == 1:
            v_ctx, v_qry = self._view(0, x_ctx, y, x_qry, cat, n_classes, {})
            return self._single_pass(v_ctx, y, v_qry, n_classes)
        members = self._members(x_ctx.shape[1], n_classes)
        width = self.max_features if self.slots == "spread" else x_ctx.shape[1]
        keep = (relevant_features(x_ctx, y, n_classes) if self.feature_select == "relevant"
                else None)
        cache: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}
        xc, xq, masks, ys, n_feat = [], [], [], [], []
        for i, (slots, c_perm) in enumerate(members):  # all passes run as one batch of tasks
            v_ctx, v_qry = self._view(i, x_ctx, y, x_qry, cat, n_classes, cache)
            cols, slots = self._pass_columns(i, slots, keep)
            xc.append(self._place(v_ctx[:, cols], slots, width))
            xq.append(self._place(v_qry[:, cols], slots, width))
            mask = torch.zeros(width, dtype=torch.bool, device=self.device)
            mask[slots] = True
            masks.append(mask)
            ys.append(c_perm[y])
            n_feat.append(len(cols))
        logits = self.net(torch.stack(xc), torch.stack(ys), torch.stack(xq), int(n_classes),
                          torch.tensor(n_feat, device=self.device),
                          torch.stack(masks))[:, :, :n_classes]
        total = sum(
            torch.log_softmax(logits[i][:, c_perm], dim=-1) for i, (_, c_perm) in enumerate(members)
        )
        return total / self.n_ensemble

    def _view(self, i: int, x_ctx: torch.Tensor, y: torch.Tensor, x_qry: torch.Tensor,
              cat: tuple[list[int], list[int]], n_classes: int, cache: dict,
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """What pass ``i`` sees: the declared category columns (``cat[0]``) target-encoded on
        every pass with ``categoricals="target"``, on the even passes with ``"mixed"``, never
        with ``"codes"``; the code-like integer columns (``cat[1]``, ``integer_levels``) on the
        even passes only, their other reading (numbers) on the odd ones; the rates are the
        context's most frequent class's or, with ``encode_class="cycle"``, class ``i mod K``'s
        of a multiclass task. Then, with ``transforms="mixed"``, rank-Gauss scores on the odd
        passes. Views are computed once per episode (``cache``)."""
        declared, code_like = cat
        encode = declared if (self.categoricals == "target"
                              or (self.categoricals == "mixed" and i % 2 == 0)) else []
        columns = sorted(encode + (code_like if i % 2 == 0 else []))
        cls = encoded_class(y, n_classes)
        if columns and self.encode_class == "cycle" and n_classes > 2:
            cls = (cls + i) % n_classes
        ranked = self.transforms == "mixed" and i % 2 == 1
        key = (tuple(columns), cls if columns else -1, ranked)
        if key not in cache:
            folds = CROSS_FOLDS if self.encode_fit == "cross_fit" else 0
            v_ctx, v_qry = target_encode(x_ctx, y, x_qry, columns, cls, folds=folds)
            cache[key] = rank_gauss(v_ctx, v_qry) if ranked else (v_ctx, v_qry)
        return cache[key]

    def _pass_columns(self, i: int, slots: torch.Tensor, keep: torch.Tensor | None,
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """The columns pass ``i`` sees and their slots: all of them, or on odd passes with a
        ``keep`` mask the kept ones, in the same relative order (the leading slots with
        ``slots="leading"``, their own slots with ``"spread"``)."""
        if keep is None or i % 2 == 0 or bool(keep.all()):
            return torch.arange(len(slots), device=slots.device), slots
        cols = torch.nonzero(keep).flatten()
        kept = slots[cols]
        return cols, kept if self.slots == "spread" else torch.argsort(torch.argsort(kept))

    def _category_columns(self, categorical: np.ndarray | None, x_ctx: torch.Tensor,
                          ) -> tuple[list[int], list[int]]:
        """Indices of the declared category columns (none with ``categoricals="codes"``) and,
        with ``integer_levels`` k > 0, of the other columns whose context values lie on an
        equally spaced grid (integers up to the preprocessing's affine map) with 2..k distinct
        values: codes or counts a table carries as numbers, which may be read either way."""
        n_feat = x_ctx.shape[1]
        mask = np.zeros(n_feat, dtype=bool)
        if categorical is not None:
            mask = np.asarray(categorical, dtype=bool)
            if mask.shape != (n_feat,):
                raise CausalMixError(
                    f"categorical mask has {mask.size} entries for {n_feat} columns")
        declared = [] if self.categoricals == "codes" else np.flatnonzero(mask).tolist()
        if self.integer_levels <= 0:
            return declared, []
        code_like = code_like_columns(x_ctx, self.integer_levels) & ~mask
        return declared, np.flatnonzero(code_like).tolist()

    def _members(self, n_feat: int, n_classes: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per pass: the encoder slot of each feature and the class renaming (fixed seed)."""
        gen = torch.Generator().manual_seed(20240531)
        out = [(torch.arange(n_feat), torch.arange(n_classes))]
        for _ in range(1, self.n_ensemble):
            f_perm = torch.randperm(n_feat, generator=gen)
            c_perm = torch.randperm(n_classes, generator=gen)
            if self.slots == "spread":
                slots = torch.randperm(self.max_features, generator=gen)[:n_feat]
            else:  # column k of the pass is feature f_perm[k]: feature j sits at slot k
                slots = torch.argsort(f_perm)
            out.append((slots, c_perm))
        return [(a.to(self.device), b.to(self.device)) for a, b in out]

    def _place(self, x: torch.Tensor, slots: torch.Tensor, width: int) -> torch.Tensor:
        out = x.new_zeros(x.shape[0], width)
        out[:, slots] = x
        return out

    def predict_proba(self, X: np.ndarray, batch_size: int = 4096) -> np.ndarray:
        """As the base class, in batches of 4,096 query rows: queries never attend to each
        other, so larger batches only save re-encoding the context."""
        return super().predict_proba(X, batch_size=batch_size)

    def _single_pass(
        self, x_ctx: torch.Tensor, y_ctx: torch.Tensor, x_qry: torch.Tensor, n_classes: int
    ) -> torch.Tensor:
        logits = self.net(x_ctx[None], y_ctx[None], x_qry[None], int(n_classes))
        return logits[0, :, :n_classes]


def rank_gauss(x_ctx: torch.Tensor, x_qry: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each column through the context rows' empirical CDF (tied values share their mid rank)
    to normal scores, standardised over the context; a view that skewed, heavy-tailed and
    heaped columns cannot distort. Query values beyond the context's range get its extremes;
    a column constant over the context is 0 everywhere."""
    n = x_ctx.shape[0]
    ref = torch.sort(x_ctx, dim=0).values.T.contiguous()

    def scores(x: torch.Tensor) -> torch.Tensor:
        mid = mid_rank_sums(ref, x.T.contiguous())
        u = (mid.to(torch.float32) / (2 * n)).clamp(0.5 / n, 1 - 0.5 / n)
        return torch.special.ndtri(u).T

    z_ctx, z_qry = scores(x_ctx), scores(x_qry)
    mean, sd = z_ctx.mean(dim=0), z_ctx.std(dim=0, unbiased=False)
    keep = sd > 1e-6
    scale = torch.where(keep, 1.0 / sd.clamp_min(1e-6), torch.zeros_like(sd))
    return (z_ctx - mean) * scale, (z_qry - mean) * scale


def inference_options(meta: dict, given: dict[str, Any]) -> dict[str, Any]:
    """The inference options: those ``given`` (None = unset) over the checkpoint's own
    defaults (``meta["inference"]``) over ``LEGACY_INFERENCE``."""
    unknown = sorted(set(given) - set(LEGACY_INFERENCE))
    if unknown:
        raise CausalMixError(f"pfn: unknown option(s) {unknown}")
    out = {**LEGACY_INFERENCE, **dict(meta.get("inference") or {})}
    out.update({k: v for k, v in given.items() if v is not None})
    return out


@register_model("pfn")
def build_pfn(
    device: str = "cpu",
    checkpoint: str | None = None,
    random_init: bool = False,
    seed: int = 0,
    n_ensemble: int | None = None,
    slots: str | None = None,
    transforms: str | None = None,
    categoricals: str | None = None,
    encode_class: str | None = None,
    integer_levels: int | None = None,
    encode_fit: str | None = None,
    feature_select: str | None = None,
    **options: Any,
) -> InContextClassifier:
    """The embedded PFN: bundled weights by default, ``checkpoint`` to load another file,
    or ``random_init=True`` for untrained weights (seeded; ``options`` override the
    architecture, e.g. ``d_model=32``). Inference options left unset take the checkpoint's
    defaults (``meta["inference"]``; ``LEGACY_INFERENCE`` for files without them):
    ``n_ensemble`` permuted passes are averaged at prediction time (1 = a single pass);
    ``slots`` says where they put the features ("leading": permuted within the leading slots;
    "spread": at random encoder slots); ``transforms`` what they see ("mixed": rank-Gauss
    scores on every second pass); ``categoricals`` how category columns enter ("target": class
    rates of their level among the context rows; "codes": the codes as numbers, as before
    version 2; "mixed": target-encoded on even passes, codes on odd ones); ``encode_class``
    which class's rates ("frequent": the context's most frequent class; "cycle": another
    class on every pass of a multiclass task); ``integer_levels`` k > 0 also target-encodes
    equally spaced columns with at most k distinct context values; ``encode_fit`` whose labels
    a context row's rates use ("in_sample": all context rows, its own included; "cross_fit":
    the rows outside its fold of a fixed 5-fold partition); ``feature_select`` which columns
    the odd passes see ("none": all; "relevant": those informative on the context rows)."""
    inference = {"n_ensemble": n_ensemble, "slots": slots, "transforms": transforms,
                 "categoricals": categoricals, "encode_class": encode_class,
                 "integer_levels": integer_levels, "encode_fit": encode_fit,
                 "feature_select": feature_select}
    if random_init:
        try:
            config = PFNConfig(**options)
        except TypeError as exc:
            raise CausalMixError(f"pfn: unknown architecture option ({exc})") from None
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = PFNTransformer(config)
        return EmbeddedPFN(net, device, {"random_init": True}, **inference)
    if options:
        raise CausalMixError(f"pfn: unknown option(s) {sorted(options)}")
    config, state, meta = load_weights(checkpoint or bundled_checkpoint_path())
    net = PFNTransformer(config)
    net.load_state_dict(state)
    return EmbeddedPFN(net, device, meta, **inference)


# Options a sweep file may give (architecture fields only apply with ``random_init``).
build_pfn.OPTIONS = ("checkpoint", "random_init", "seed", *LEGACY_INFERENCE,  # type: ignore[attr-defined]
                     *PFNConfig.__dataclass_fields__)
build_pfn.CHOICES = CHOICES  # type: ignore[attr-defined]
# Bumped when the same options and weights predict or fine-tune differently (part of the trial
# cache key): 2 = category columns target-encoded by default; fine-tuning trains the ensemble.
# Defaults that a checkpoint file names (meta["inference"]) change with the file's hash instead.
build_pfn.VERSION = 2  # type: ignore[attr-defined]
