"""Writing tables (Parquet + CSV) and figures (PNG + SVG) of the report."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

FIGURE_FORMATS: tuple[str, ...] = ("png", "svg")


@dataclass
class Outputs:
    """Everything written for one report: tables, figures (PNG bytes kept for the HTML)."""

    out_dir: Path
    tables: dict[str, Path] = field(default_factory=dict)
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: dict[str, Path] = field(default_factory=dict)
    images: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def table(self, name: str, frame: pd.DataFrame) -> pd.DataFrame:
        """Write ``<name>.parquet`` and ``<name>.csv``; returns the frame unchanged."""
        frame = frame.reset_index(drop=True)
        frame.to_csv(self.out_dir / f"{name}.csv", index=False)
        frame.to_parquet(self.out_dir / f"{name}.parquet", index=False)
        self.tables[name] = self.out_dir / f"{name}.csv"
        self.frames[name] = frame
        return frame

    def figure(self, name: str, fig: plt.Figure, extra_dirs: tuple[Path, ...] = ()) -> None:
        """Write ``<name>.png`` and ``<name>.svg`` (PNG also into ``extra_dirs``); close it."""
        for fmt in FIGURE_FORMATS:
            fig.savefig(self.out_dir / f"{name}.{fmt}", dpi=150, bbox_inches="tight")
        for directory in extra_dirs:
            fig.savefig(Path(directory) / f"{name}.png", dpi=150, bbox_inches="tight")
        plt.close(fig)
        png = self.out_dir / f"{name}.png"
        self.figures[name] = png
        self.images[name] = base64.b64encode(png.read_bytes()).decode("ascii")
