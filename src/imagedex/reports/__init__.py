"""Scheduled reports: a saved search or the dashboard, rendered to PDF/XLSX/PNG/CSV and sent.

Heavy parts (matplotlib, fpdf2, openpyxl) load only inside the renderers.
"""

from __future__ import annotations

from imagedex.reports.model import FORMATS, Report, ReportRun
from imagedex.reports.store import ReportStore

__all__ = ["FORMATS", "Report", "ReportRun", "ReportStore"]
