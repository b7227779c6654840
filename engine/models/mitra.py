"""The Mitra backend (``model: {name: mitra}``): AutoGluon's ``Tab2D`` network, fine-tuned by
the project's own episodic loop (``engine.trials.finetune``), not by AutoGluon's trainer.

Weights come from a local ``checkpoint`` (a directory in the Hugging Face layout, ``config.json``
+ ``model.safetensors``, or a single file, see :func:`read_checkpoint`) or from the Hugging Face
hub (``autogluon/mitra-classifier`` by default), cached under ``$CAUSALMIX_CACHE`` (default
``~/.cache/causalmix``). ``causalmix prefetch mitra`` fills that cache ahead of a sweep.

AutoGluon and ``huggingface_hub`` are optional (``pip install 'causalmix-sweep[mitra]'``) and
are imported only when a Mitra model is built or weights are fetched.
"""

from __future__ import annotations

import json
import os
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from engine.core.errors import CausalMixError, DataError, MissingExtraError
from engine.models.base import InContextClassifier, register_model

if TYPE_CHECKING:
    import numpy as np

DEFAULT_REPO_ID = "autogluon/mitra-classifier"
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
#: safetensors metadata key holding the architecture when a single ``.safetensors`` file is used
CONFIG_METADATA_KEY = "mitra_config"
PRECISIONS = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


# ---------------------------------------------------------------------------- configuration
@dataclass(frozen=True)
class MitraConfig:
    """The ``Tab2D`` architecture, as stored in a checkpoint's ``config.json``."""

    dim: int
    dim_output: int
    n_layers: int
    n_heads: int
    task: str = "CLASSIFICATION"

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str) -> MitraConfig:
        """Validate a ``config.json`` mapping (extra keys are ignored)."""
        try:
            cfg = cls(
                dim=int(raw["dim"]), dim_output=int(raw["dim_output"]),
                n_layers=int(raw["n_layers"]), n_heads=int(raw["n_heads"]),
                task=str(raw.get("task", "CLASSIFICATION")).split(".")[-1].upper(),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CausalMixError(
                f"{source}: not a Mitra config ({type(exc).__name__}: {exc})"
            ) from None
        if cfg.task != "CLASSIFICATION":
            raise CausalMixError(f"{source}: a {cfg.task.lower()} checkpoint; mitra needs a "
                                 "classification one (e.g. autogluon/mitra-classifier)")
        if min(cfg.dim, cfg.dim_output, cfg.n_layers, cfg.n_heads) < 1 or cfg.dim % cfg.n_heads:
            raise CausalMixError(f"{source}: invalid Mitra architecture {asdict(cfg)}")
        return cfg


def default_cache_dir() -> Path:
    """``$CAUSALMIX_CACHE`` if set, else ``~/.cache/causalmix``."""
    return Path(os.environ.get("CAUSALMIX_CACHE") or Path.home() / ".cache" / "causalmix")


def _hub_cache(cache_dir: str | os.PathLike | None) -> Path:
    """The hub's cache folder inside the project cache (``cache_dir`` or the default)."""
    root = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    return root / "huggingface"


# ---------------------------------------------------------------------------- weights on disk
def read_checkpoint(path: str | os.PathLike) -> tuple[MitraConfig, dict[str, torch.Tensor]]:
    """Read Tab2D weights and architecture from ``path``.

    Accepted: a directory holding ``config.json`` + ``model.safetensors`` (the hub layout);
    a ``.safetensors`` file whose metadata carries ``mitra_config`` or that has a
    ``config.json`` beside it; or a torch file holding ``{"config": ..., "state_dict": ...}``.
    """
    p = Path(path).expanduser()
    if p.is_dir():
        cfg_file, weights = p / CONFIG_FILE, p / WEIGHTS_FILE
        missing = [f.name for f in (cfg_file, weights) if not f.is_file()]
        if missing:
            raise CausalMixError(f"Mitra checkpoint {p} lacks {', '.join(missing)}")
        return _config_from_json(cfg_file), _load_safetensors(weights)[0]
    if not p.is_file():
        raise CausalMixError(f"Mitra checkpoint not found: {p}")
    if p.suffix == ".safetensors":
        state, meta = _load_safetensors(p)
        if CONFIG_METADATA_KEY in meta:
            return MitraConfig.from_dict(json.loads(meta[CONFIG_METADATA_KEY]), str(p)), state
        if (p.parent / CONFIG_FILE).is_file():
            return _config_from_json(p.parent / CONFIG_FILE), state
        raise CausalMixError(
            f"{p}: no '{CONFIG_METADATA_KEY}' metadata and no {CONFIG_FILE} beside it"
        )
    try:
        blob = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is one user-facing line
        raise CausalMixError(
            f"{p}: not a readable Mitra checkpoint ({type(exc).__name__})"
        ) from None
    if not isinstance(blob, dict) or "config" not in blob or "state_dict" not in blob:
        raise CausalMixError(f"{p} is not a Mitra checkpoint (no 'config'/'state_dict')")
    return MitraConfig.from_dict(blob["config"], str(p)), blob["state_dict"]


def write_checkpoint(net: nn.Module, config: MitraConfig, out_dir: str | os.PathLike) -> Path:
    """Save ``net`` under ``out_dir`` in the hub layout (config.json + model.safetensors)."""
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    save_file(state, str(out / WEIGHTS_FILE))
    (out / CONFIG_FILE).write_text(json.dumps(asdict(config), indent=2) + "\n")
    return out


def _config_from_json(path: Path) -> MitraConfig:
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CausalMixError(f"{path}: unreadable config ({exc})") from None
    if not isinstance(raw, dict):
        raise CausalMixError(f"{path}: expected a JSON object")
    return MitraConfig.from_dict(raw, str(path))


def _load_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    try:
        from safetensors import safe_open
    except ImportError:
        raise MissingExtraError("the Mitra model", "mitra", "safetensors") from None
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # noqa: BLE001
        raise CausalMixError(f"{path}: unreadable safetensors file ({exc})") from None
    return state, meta


# ---------------------------------------------------------------------------- hub download
def _snapshot(repo_id: str, cache_dir: str | os.PathLike | None, revision: str | None,
              local_only: bool) -> Path:
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise MissingExtraError("downloading Mitra weights", "mitra", "huggingface_hub") from None
    path = snapshot_download(
        repo_id=repo_id, revision=revision, cache_dir=str(_hub_cache(cache_dir)),
        allow_patterns=[CONFIG_FILE, WEIGHTS_FILE], local_files_only=local_only,
    )
    return Path(path)


def prefetch(cache_dir: str | os.PathLike | None = None, repo_id: str = DEFAULT_REPO_ID,
             revision: str | None = None) -> Path:
    """Download (or refresh) the Mitra weights into the cache; returns the snapshot directory.

    Run it on every node before an offline sweep; later model builds read the cache only.
    """
    try:
        path = _snapshot(repo_id, cache_dir, revision, local_only=False)
    except CausalMixError:
        raise
    except Exception as exc:  # noqa: BLE001 - network/hub failures become one line
        raise CausalMixError(
            f"could not download '{repo_id}' from the Hugging Face hub "
            f"({type(exc).__name__}: {_first_line(exc)})"
        ) from None
    read_checkpoint(path)  # fail now, not in a trial, if the snapshot is incomplete
    return path


def resolve_weights(checkpoint: str | os.PathLike | None, repo_id: str = DEFAULT_REPO_ID,
                    cache_dir: str | os.PathLike | None = None,
                    revision: str | None = None) -> Path:
    """Where the weights are: ``checkpoint`` if given, else the cached hub snapshot (downloaded
    on first use when the hub is reachable)."""
    if checkpoint:
        p = Path(checkpoint).expanduser()
        if not p.exists():
            raise CausalMixError(f"Mitra checkpoint not found: {p}")
        return p
    try:
        cached = _snapshot(repo_id, cache_dir, revision, local_only=True)
        if (cached / CONFIG_FILE).is_file() and (cached / WEIGHTS_FILE).is_file():
            return cached
    except CausalMixError:
        raise
    except Exception:  # noqa: BLE001 - not cached yet: try the hub
        pass
    try:
        return _snapshot(repo_id, cache_dir, revision, local_only=False)
    except CausalMixError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise CausalMixError(
            f"Mitra weights '{repo_id}' are not cached in {_hub_cache(cache_dir)} and could not "
            f"be downloaded ({type(exc).__name__}: {_first_line(exc)}); run 'causalmix prefetch "
            "mitra' where the hub is reachable, or set model.checkpoint to a local directory"
        ) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""


# ---------------------------------------------------------------------------- the network
def tab2d_class() -> type[nn.Module]:
    """AutoGluon's ``Tab2D`` class (raises a one-line error when AutoGluon is missing)."""
    try:
        from autogluon.tabular.models.mitra._internal.models.tab2d import Tab2D
    except ImportError as err:
        raise MissingExtraError("the Mitra model", "mitra",
                                missing_package(err, "autogluon.tabular")) from None
    return Tab2D


def missing_package(err: ImportError, default: str) -> str:
    """The package whose import failed (e.g. ``frozendict``, needed by ``einx``), else
    ``default``: a missing AutoGluon module is reported as ``default``."""
    name = getattr(err, "name", None)
    if not name or name.split(".")[0] == default.split(".")[0]:
        return default
    return name.split(".")[0]


def new_tab2d(config: MitraConfig) -> nn.Module:
    """A freshly initialised ``Tab2D`` with ``config``'s architecture (on CPU, no flash-attn,
    so the same code path runs on CPU and GPU)."""
    return tab2d_class()(
        dim=config.dim, dim_output=config.dim_output, n_layers=config.n_layers,
        n_heads=config.n_heads, task=config.task, use_pretrained_weights=False,
        path_to_weights="", device="cpu",
    )


class MitraClassifier(InContextClassifier):
    """Mitra's ``Tab2D``: 2-D attention over rows and features, one support set per episode."""

    max_classes = 10
    max_features = 500
    max_context = 10000

    def __init__(self, net: nn.Module, config: MitraConfig, device: str | torch.device = "cpu",
                 precision: str = "float32", meta: dict | None = None) -> None:
        super().__init__(device)
        if precision not in PRECISIONS:
            raise CausalMixError(f"mitra: precision must be one of {sorted(PRECISIONS)}, "
                                 f"got {precision!r}")
        self.config = config
        self.max_classes = min(type(self).max_classes, config.dim_output)
        self.precision = precision
        self.net = net.to(self.device).eval()
        self.meta = meta or {}

    @property
    def module(self) -> nn.Module:
        return self.net

    def forward_episode(
        self, X_ctx: torch.Tensor, y_ctx: torch.Tensor, X_qry: torch.Tensor, n_classes: int,
        categorical: np.ndarray | None = None,
    ) -> torch.Tensor:
        """Logits ``(n_query, n_classes)``; differentiable in the module's parameters. Mitra
        reads category codes as numbers (its own pretraining did), so ``categorical`` is
        not used."""
        if n_classes > self.max_classes:
            raise DataError(f"MitraClassifier handles at most {self.max_classes} classes, "
                            f"got {n_classes}")
        dev = self.device
        # Tab2D writes into padded support positions in place: hand it a private copy.
        x_s = X_ctx.to(dev, torch.float32).clone()[None]
        y_s = y_ctx.to(dev, torch.long)[None]
        x_q = X_qry.to(dev, torch.float32)[None]
        pad_features = torch.zeros((1, x_s.shape[2]), dtype=torch.bool, device=dev)
        pad_support = torch.zeros((1, x_s.shape[1]), dtype=torch.bool, device=dev)
        pad_query = torch.zeros((1, x_q.shape[1]), dtype=torch.bool, device=dev)
        dtype = PRECISIONS[self.precision]
        ctx = (torch.autocast(device_type=dev.type, dtype=dtype) if dtype != torch.float32
               else nullcontext())
        with ctx:
            out = self.net(x_s, y_s, x_q, pad_features, pad_support, pad_query)
        return out[0, :, :n_classes].float()


@register_model("mitra")
def build_mitra(
    device: str = "cpu",
    checkpoint: str | None = None,
    repo_id: str = DEFAULT_REPO_ID,
    cache_dir: str | None = None,
    revision: str | None = None,
    **options: Any,
) -> InContextClassifier:
    """Mitra with weights from ``checkpoint`` (local directory or file) or the hub ``repo_id``
    (cached in ``cache_dir``). Options: ``precision`` ('float32' default, 'bfloat16',
    'float16': autocast for the forward pass)."""
    precision = str(options.pop("precision", "float32"))
    if precision not in PRECISIONS:
        raise CausalMixError(f"mitra: precision must be one of {sorted(PRECISIONS)}, "
                             f"got {precision!r}")
    if options:
        raise CausalMixError(f"mitra: unknown option(s) {sorted(options)} "
                             "(known: checkpoint, repo_id, cache_dir, revision, precision)")
    tab2d_class()  # a missing extra is reported before any download
    source = resolve_weights(checkpoint, repo_id, cache_dir, revision)
    config, state = read_checkpoint(source)
    net = new_tab2d(config)
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        raise CausalMixError(f"{source}: weights do not match its Mitra config "
                             f"({_first_line(exc)})") from None
    meta = {"source": str(source), "repo_id": None if checkpoint else repo_id, **asdict(config)}
    return MitraClassifier(net, config, device, precision=precision, meta=meta)


build_mitra.OPTIONS = ("checkpoint", "repo_id", "cache_dir", "revision",  # type: ignore[attr-defined]
                       "precision")
