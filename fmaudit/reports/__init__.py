"""Audit reports: one envelope and schema for every stage, a run summary, and pandas loading."""

from fmaudit.reports.envelope import (SCHEMA_PATH, make_report, new_run_id, now_iso, read_reports, schema,
                                      validate_report, write_report, write_summary)
from fmaudit.reports.load import ReportFrames, load

__all__ = ["SCHEMA_PATH", "ReportFrames", "load", "make_report", "new_run_id", "now_iso", "read_reports", "schema",
           "validate_report", "write_report", "write_summary"]
