"""``causalmix report``: statistics, tables, figures and an HTML report of finished sweeps."""

from engine.report.build import build_report

__all__ = ["build_report"]
