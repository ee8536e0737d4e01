"""What a compliance reviewer does in a notebook: load a run's reports as pandas DataFrames.

    python examples/reports_in_pandas.py reports/demo/filtered/reports
"""

import sys

from fmaudit import reports

r = reports.load(sys.argv[1] if len(sys.argv) > 1 else "reports/demo/filtered/reports")
print("failed checks:\n", r.checks[~r.checks.passed] if (~r.checks.passed).any() else "none")
print("\ncounts per stage:\n", r.counts[["stage", "in", "kept", "dropped", "held", "quarantined", "added"]])
print("\nmetrics:\n", r.metrics.pivot_table(index="name", columns="stage", values="value", aggfunc="first"))
print("\nthe pii stage's envelope keys:", sorted(r.reports["pii"]) if "pii" in r.reports else "no pii report")
