"""Whether a fit and a trial fit side by side on an unlabelled cluster (no Ray needed)."""
from engine.execution.orchestrate import _no_room_beside


def test_one_cpu_cluster_runs_its_fits_first() -> None:
    # Tune keeps a trial actor on the one CPU, so a queued fit would wait forever.
    assert _no_room_beside([{"CPU": 1.0}], generator_cpus=1.0, trial_cpus=1.0)
    assert _no_room_beside([{"CPU": 3.0}], generator_cpus=2.0, trial_cpus=2.0)


def test_room_for_both_keeps_fits_beside_trials() -> None:
    assert not _no_room_beside([{"CPU": 2.0}], generator_cpus=1.0, trial_cpus=1.0)
    assert not _no_room_beside([{"CPU": 1.0}, {"CPU": 1.0}], generator_cpus=1.0,
                               trial_cpus=1.0)
