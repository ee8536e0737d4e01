"""Audit reports: one envelope and schema for every stage, a run summary, and pandas loading."""

from fmaudit.reports.envelope import (SCHEMA_PATH, make_report, new_run_id, now_iso, read_reports, schema,
                                      validate_report, write_report, write_summary)

__all__ = ["SCHEMA_PATH", "ReportFrames", "load", "make_report", "new_run_id", "now_iso", "read_reports", "schema",
           "validate_report", "write_report", "write_summary"]


def __getattr__(name):  # pandas is imported only by those who load reports into DataFrames
    if name in ("load", "ReportFrames"):
        from fmaudit.reports import frames

        return getattr(frames, name)
    raise AttributeError(name)
