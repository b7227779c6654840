"""Folds: the real rows of each dataset-fold (training, validation, test) from a plan's
fold refs."""
