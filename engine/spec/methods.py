"""The compared methods: which generator each uses, how episodes mix real and synthetic rows."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Method:
    """A fine-tuning method.

    ``generator``: the generator plug-in supplying synthetic rows (None: real rows only).
    ``synthetic_only``: episodes use synthetic rows only (mix ratio fixed at 1); real training
    rows remain the context for validation and test scoring.
    """

    name: str
    generator: str | None
    synthetic_only: bool
    description: str

    def grid(
        self, scales: tuple[float, ...], mixes: tuple[float, ...]
    ) -> list[tuple[float, float]]:
        """The (synthetic_scale, mix_ratio) points this method runs."""
        if self.generator is None:
            return [(0.0, 0.0)]
        if self.synthetic_only:
            return [(s, 1.0) for s in scales]
        return [(s, m) for s in scales for m in mixes]


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("finetune", None, False, "standard fine-tuning on real rows only"),
        Method("causalmixft", "scm", False, "CausalMixFT: real rows mixed with SCM rows"),
        Method("scm", "scm", True, "fine-tuning on SCM rows only"),
        Method("ctgan", "ctgan", True, "fine-tuning on CTGAN rows only"),
        Method("tabebm", "tabebm", True, "fine-tuning on TabEBM rows only"),
        Method("tableaugment", "tableaugment", True, "fine-tuning on TableAugment rows only"),
        Method("mixed", "mixed", True, "fine-tuning on Mixed-Model rows only"),
        Method("tabddpm", "tabddpm", True, "fine-tuning on TabDDPM rows only"),
        Method("causalmixft_tabddpm", "tabddpm", False, "real rows mixed with TabDDPM rows"),
        Method("smote", "smote", False, "real rows mixed with SMOTE-NC rows"),
    )
}
