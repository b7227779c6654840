"""Published numbers of the reference study, shown next to this sweep's values for orientation.

Bühler, Purucker & Hutter (2026), "CausalMixFT": median normalised ROC-AUC improvement and the
validation-test correlation gap, on the study's own benchmark (33 TabArena datasets x 10 folds,
Mitra; not recomputed here). The improvements are in percent, the unit of this engine's
``normalized_improvement_pct``: sign x (score / zero-shot - 1) x 100 %.
"""

from __future__ import annotations

METHOD_ORDER: tuple[str, ...] = (
    "finetune",
    "causalmixft",
    "scm",
    "mixed",
    "ctgan",
    "tabebm",
    "tableaugment",
)
REFERENCE_METHOD = "finetune"

REFERENCE_MEDIAN_IMPROVEMENT: dict[str, float] = {
    "finetune": 0.10,
    "causalmixft": 0.12,
    "ctgan": -0.01,
    "tabebm": -0.04,
    "tableaugment": -0.09,
}
REFERENCE_STD_IMPROVEMENT: dict[str, float] = {"finetune": 0.98, "causalmixft": 0.63}
"""The spread (standard deviation, %) the study reports beside its medians."""
REFERENCE_GAP: dict[str, float] = {"finetune": 0.67, "causalmixft": 0.30}


def method_sort_key(method: str) -> tuple[int, str]:
    """Known methods in the study's order first, then any others alphabetically."""
    order = METHOD_ORDER.index(method) if method in METHOD_ORDER else len(METHOD_ORDER)
    return order, method


def ordered_methods(methods: object) -> list[str]:
    """Unique method names in report order."""
    return sorted({str(m) for m in methods}, key=method_sort_key)
