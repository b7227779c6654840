"""Storage: every file of a sweep (SweepStore) on local paths and object stores alike
(fsio); the results' columns; the run's progress."""
