"""Whether a fit and a trial fit side by side on a cluster (no Ray needed)."""
from engine.execution.placement import FIT_RESOURCE, fits_first


def test_one_cpu_cluster_runs_its_fits_first() -> None:
    # Tune keeps a trial actor on the one CPU, so a queued fit would wait forever.
    assert fits_first([{"CPU": 1.0}], generator_cpus=1.0, trial_cpus=1.0)
    assert fits_first([{"CPU": 3.0}], generator_cpus=2.0, trial_cpus=2.0)


def test_room_for_both_keeps_fits_beside_trials() -> None:
    assert not fits_first([{"CPU": 2.0}], generator_cpus=1.0, trial_cpus=1.0)
    assert not fits_first([{"CPU": 1.0}, {"CPU": 1.0}], generator_cpus=1.0, trial_cpus=1.0)
    # Labelled fit nodes hold the fits apart from the trials: no need to wait.
    assert not fits_first([{"CPU": 1.0, FIT_RESOURCE: 1.0}], generator_cpus=1.0,
                          trial_cpus=1.0)
