"""Trials: one trial of the grid or search: zero-shot score, episodic fine-tuning, metrics."""
