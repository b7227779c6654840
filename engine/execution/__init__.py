"""Execution: runs a plan on Ray: the fit pool, Tune trials, Optuna studies and placement."""
