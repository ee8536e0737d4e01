"""``fmaudit score --feedback NAMES FILE``: feedback functions over a log of model outputs (an LLM
application's, say), into a per-record table and a report.

The log is JSONL or CSV; each record's text is its ``--text-field`` (default: the first of ``response``,
``output``, ``completion``, ``text`` that the first record has) and, optionally, the prompt it answers
(``--prompt-field``; default: the first of ``prompt``, ``input``, ``question`` present). Outputs in ``OUT``:

    scores.jsonl / scores.csv   one row per record: line, id, and <function>_score, _label, _reason, _flagged
    reports/score.json          per function: mean score (bootstrap CI) and flagged rate (Wilson CI; the
                                intervals in details.intervals, as audits report them); checks
                                from --max-flagged NAME=RATE; the functions' scorers (name, version, hash)

Rows hold no text: only ids, scores and reasons (which never quote PII). ``pandas.read_json(OUT /
"scores.jsonl", lines=True)`` or ``pandas.read_csv(OUT / "scores.csv")`` load the table.
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path
from typing import Optional, Sequence

from fmaudit.audits.inputs import read_csv_rows
from fmaudit.audits.stats import mean, rate
from fmaudit.corpus import iter_json_rows, sha256_file
from fmaudit.errors import InputError, UsageError
from fmaudit.reports.content import Check

TEXT_FIELDS = ("response", "output", "completion", "text")
PROMPT_FIELDS = ("prompt", "input", "question")


def read_log(path: Path) -> list[tuple[int, dict]]:
    """(line, record) of a JSONL or CSV log."""
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if path.suffix.lower() == ".csv":
        return read_csv_rows(path, [])
    rows = []
    for line, row in iter_json_rows(path):
        if not isinstance(row, dict):
            raise InputError(f"{path}:{line}: a record must be a JSON object")
        rows.append((line, row))
    if not rows:
        raise InputError(f"{path}: no records")
    return rows


def _pick(rows, given: Optional[str], candidates: Sequence[str], what: str, path: Path, required: bool):
    if given:
        return given
    first = rows[0][1]
    for name in candidates:
        if name in first:
            return name
    if required:
        raise InputError(f"{path}:{rows[0][0]}: no {what} field ({', '.join(candidates)}); name it with "
                         f"--{what}-field")
    return None


def score_log(path: Path, names: Sequence[str], out: Path, *, text_field: Optional[str] = None,
              prompt_field: Optional[str] = None, id_field: str = "id", max_flagged: Optional[dict] = None,
              seed: int = 0) -> dict:
    """Score every record of ``path`` with the feedback functions ``names``; write the table and the
    report under ``out``; return the report."""
    from fmaudit.reports import make_report, write_report, write_summary
    from fmaudit.reports.envelope import new_run_id, now_iso
    from fmaudit.scoring.functions import feedback_function

    t0, started = time.time(), now_iso()
    unknown = sorted(set(max_flagged or {}) - set(names))
    if unknown:
        raise UsageError(f"--max-flagged names {', '.join(unknown)}, which --feedback does not run")
    functions = [feedback_function(n) for n in names]  # unknown names fail before any reading
    rows = read_log(path)
    tf = _pick(rows, text_field, TEXT_FIELDS, "text", path, True)
    pf = _pick(rows, prompt_field, PROMPT_FIELDS, "prompt", path, False)
    texts, prompts = [], []
    for line, row in rows:
        text = row.get(tf)
        if not isinstance(text, str):
            raise InputError(f"{path}:{line}: field {tf!r} is missing or not a string")
        texts.append(text)
        p = row.get(pf) if pf else None
        prompts.append(p if isinstance(p, str) else None)
    table = [{"line": line, "id": str(row.get(id_field, line))} for line, row in rows]
    intervals, checks, described = {}, [], {}
    for fn in functions:
        results = fn.batch(texts, prompts if pf else None)
        described[fn.name] = fn.describe()
        for rec, fb in zip(table, results):
            rec.update({f"{fn.name}_score": fb.score, f"{fn.name}_label": fb.label, f"{fn.name}_reason": fb.reason,
                        f"{fn.name}_flagged": fb.flagged})
        m_score = mean([fb.score for fb in results], item_field=f"{fn.name}_score", seed=seed)
        m_flag = rate([fb.flagged for fb in results], item_field=f"{fn.name}_flagged")
        intervals[f"{fn.name}.mean_score"], intervals[f"{fn.name}.flagged_rate"] = m_score.to_json(), m_flag.to_json()
        if max_flagged and fn.name in max_flagged:
            checks.append(Check.evaluate(f"{fn.name}.flagged_rate", round(m_flag.value, 6), max_flagged[fn.name],
                                         "max", "error", f"share of records {fn.name} flags (n={m_flag.n})",
                                         ci=(m_flag.ci_low, m_flag.ci_high)))
    out.mkdir(parents=True, exist_ok=True)
    _write_table(out, table)
    run_id = new_run_id()
    report = make_report("score", run_id, started, kind="audit", checks=checks,
                         metrics={k: m["value"] for k, m in intervals.items()},
                         inputs=[{"path": str(path), "sha256": sha256_file(path), "records": len(rows)}],
                         details={"functions": list(names), "text_field": tf, "prompt_field": pf,
                                  "intervals": intervals, "table": ["scores.jsonl", "scores.csv"]},
                         protocol={"data_file": str(path), "data_sha256": sha256_file(path), "items": len(rows),
                                   "seed": seed, "scorer": described},
                         timings={"wall_s": round(time.time() - t0, 3)})
    write_report(out / "reports", report)
    write_summary(out / "reports", run_id)
    return report


def _write_table(out: Path, table: list[dict]) -> None:
    with open(out / "scores.jsonl", "w", encoding="utf-8") as f:
        for rec in table:
            f.write(json.dumps(rec, ensure_ascii=False, sort_keys=False) + "\n")
    with open(out / "scores.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)
