"""Thread-independent compute for generators: same data, parameters and seed -> same bits.

Floating-point sums depend on how a reduction is split across threads, so a result computed
with 16 BLAS/OpenMP/torch threads can differ from one computed with 2 in the last bits (and a
label or a missing-value position that depends on it can flip). :func:`fixed_threads` pins the
thread pools for a block and restores them afterwards:

* BLAS (OpenBLAS, MKL, BLIS) and OpenMP (scikit-learn's histogram gradient boosting and
  k-means, ...) through ``threadpoolctl``: one thread;
* torch (when it is imported): ``torch_threads`` intra-op threads (default 1) and deterministic
  algorithms (``warn_only``), both restored on exit;
* joblib: the sequential backend, so libraries that fan work out to worker processes (CTGAN's
  data transformer does for 500 rows or more) compute in this process with these limits.

Every generator's ``fit`` and ``sample`` run inside it (:class:`engine.generators.base.Generator`);
the generators keep all their tensors on the CPU, so whether CUDA is present does not matter.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def fixed_threads(torch_threads: int = 1) -> Iterator[None]:
    """Pin BLAS/OpenMP to one thread, torch to ``torch_threads``, joblib to sequential."""
    from joblib import parallel_config
    from threadpoolctl import threadpool_limits

    with contextlib.ExitStack() as stack:
        stack.enter_context(threadpool_limits(limits=1))
        stack.enter_context(parallel_config(backend="sequential"))
        if "torch" in sys.modules:
            stack.enter_context(_torch_threads(max(1, int(torch_threads))))
        yield


@contextlib.contextmanager
def _torch_threads(threads: int) -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    det = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.set_num_threads(before)
        torch.use_deterministic_algorithms(det, warn_only=warn_only)
