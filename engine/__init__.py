"""CausalMix Sweep: a Ray-distributed sweep engine for fine-tuning tabular foundation models
on real rows mixed with synthetic rows from structural causal models.

One package per stage (docs/architecture.md): spec -> plan -> folds -> fits -> trials -> report,
driven by execution and cli, on storage, core and the plug-in packages (data, generators,
models, causal)."""

__version__ = "0.1.0"
