"""Where generator fits and fine-tuning trials run on a Ray cluster.

The rule is opt-in per node. A node takes part by declaring custom Ray resources, either in
``cluster.yaml`` (``available_node_types.<type>.resources``) or with
``ray start --resources='{"causalmix_fits": 1000}'``:

* ``FIT_RESOURCE`` (``causalmix_fits``): the node runs generator fits (causal discovery plus
  SCM fitting, all on the CPU). Declare it on CPU-only worker types.
* ``TRIAL_RESOURCE`` (``causalmix_trials``): the node runs fine-tuning trials. Declare it on
  GPU worker types.

If some live node declares a resource, every task of that kind also asks for a sliver of it
(``{FIT_RESOURCE: 0.001}`` per fit, ``{TRIAL_RESOURCE: 0.001}`` per trial), so Ray only
schedules it on the nodes that declare it. With a declared amount of 1000, a node can hold up to
a million such tasks, so in practice only its CPUs and GPUs limit how many run at once. If no
live node declares a resource, no task asks for it, and a single machine or an unlabelled
cluster needs no setup. The head node declares ``CPU: 0`` and neither resource, so nothing runs
there. The resources are looked up when the sweep starts, so nodes that declare them must
already be up by then (``min_workers >= 1``).
"""

FIT_RESOURCE = "causalmix_fits"
TRIAL_RESOURCE = "causalmix_trials"

SLIVER = 0.001


def node_resources() -> list[dict[str, float]]:
    """The resources of every live node of the connected Ray cluster."""
    import ray

    return [n["Resources"] for n in ray.nodes() if n.get("Alive")]


def placement_extras(nodes: list[dict[str, float]]) -> tuple[dict[str, float], dict[str, float]]:
    """Extra resources (fit, trial) to request: a sliver of each declared placement label."""
    def extra(name: str) -> dict[str, float]:
        return {name: SLIVER} if any(n.get(name, 0) > 0 for n in nodes) else {}

    return extra(FIT_RESOURCE), extra(TRIAL_RESOURCE)


def total_cpus(nodes: list[dict[str, float]]) -> float:
    return sum(n.get("CPU", 0) for n in nodes)


def fits_first(nodes: list[dict[str, float]], generator_cpus: float, trial_cpus: float) -> bool:
    """Whether the fits must all run before the trials: an unlabelled cluster too small to run
    a fit beside a trial. Tune keeps a reused trial actor holding its CPUs between trials, so
    there a fit queued behind it would never start and the trials waiting for it never come."""
    if any(n.get(FIT_RESOURCE, 0) > 0 for n in nodes):
        return False
    return total_cpus(nodes) < generator_cpus + trial_cpus


def fit_slots(nodes: list[dict[str, float]], generator_cpus: float, trial_cpus: float = 1.0,
              trial_gpus: float = 0.0) -> int:
    """How many fits may run at once by default: all CPUs of the fit nodes when they are
    labelled; otherwise the CPUs left after reserving those of the trials that can run at once
    (as many as the GPUs hold, or one CPU-only trial), so that trials keep running beside the
    fits."""
    labelled = [n for n in nodes if n.get(FIT_RESOURCE, 0) > 0]
    if labelled:
        return max(1, int(sum(n.get("CPU", 0) for n in labelled) // generator_cpus))
    total_cpu = total_cpus(nodes)
    total_gpu = sum(n.get("GPU", 0) for n in nodes)
    trials = max(1, int(total_gpu // trial_gpus)) if trial_gpus > 0 else 1
    reserve = min(total_cpu - generator_cpus, trial_cpus * trials)
    return max(1, int((total_cpu - reserve) // generator_cpus))


def trial_slots(nodes: list[dict[str, float]], trial_cpus: float, trial_gpus: float,
                reserve_cpus: float = 0.0) -> int:
    """How many trials the cluster can hold at once (on the trial nodes when labelled). Tune
    is told this many, so it stages as many trials as can start: with a custom searcher it
    would otherwise keep a single trial pending and ramp up one trial at a time.

    On an unlabelled cluster ``reserve_cpus`` (the running fits' CPUs) are left out, so that
    reused trial actors, which Tune keeps holding their CPUs between trials, can never take
    the CPUs the fits that later trials wait for need."""
    labelled = [n for n in nodes if n.get(TRIAL_RESOURCE, 0) > 0]
    if not labelled:
        cpus = total_cpus(nodes) - reserve_cpus
        gpus = sum(n.get("GPU", 0) for n in nodes)
        nodes = [{"CPU": max(cpus, trial_cpus), "GPU": gpus}]
    slots = 0
    for n in labelled or nodes:
        by_cpu = int(n.get("CPU", 0) // trial_cpus) if trial_cpus > 0 else 10**6
        by_gpu = int(n.get("GPU", 0) // trial_gpus) if trial_gpus > 0 else by_cpu
        slots += min(by_cpu, by_gpu)
    return max(1, slots)
