"""Plain-text tables of a run's checks and counts, for the terminal."""

from __future__ import annotations

from typing import Optional


def format_value(v) -> str:
    """A metric or threshold for display: floats to 4 significant digits, None as empty."""
    if isinstance(v, float):
        return f"{v:.4g}"
    return "" if v is None else str(v)


def format_table(rows: list[tuple[str, ...]]) -> str:
    """Rows of strings as left-aligned columns, the first row a header underlined with dashes."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_checks(checks: list[dict]) -> str:
    rows = [("report", "check", "value", "threshold", "result")]
    for c in checks:
        op = {"max": "<=", "min": ">=", "equal": "=="}[c["direction"]]
        verdict = "pass" if c["passed"] else ("FAIL" if c["severity"] == "error" else c["severity"].upper())
        rows.append((c.get("report", ""), c["name"], format_value(c["value"]), f"{op} {format_value(c['threshold'])}", verdict))
    return format_table(rows)


def print_summary(summary: dict, counts: Optional[dict] = None) -> None:
    if counts:
        dropped = sum(counts["dropped"].values())
        held = sum(counts.get("held", {}).values())
        print(f"documents: read {counts['in']}, kept {counts['kept']}, dropped {dropped}, held {held}, "
              f"quarantined {counts['quarantined']}, added {counts.get('added', 0)}")
    print(format_checks(summary["checks"]))
    verdict = "PASSED" if summary["passed"] else "FAILED: " + ", ".join(summary["failed"])
    print(f"checks: {verdict}")
