"""CausalMix Sweep: a Ray-distributed sweep engine for fine-tuning tabular foundation models
on real rows mixed with synthetic rows from structural causal models."""

__version__ = "0.1.0"
