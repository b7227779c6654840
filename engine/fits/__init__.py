"""Fits: one generator fit per (dataset, fold, generator, options), its synthetic table
and fidelity report."""
