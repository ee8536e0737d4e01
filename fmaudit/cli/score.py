"""``fmaudit score --feedback NAMES FILE --out DIR``: feedback functions over a log of model outputs."""

from __future__ import annotations

import argparse
from pathlib import Path

COMMANDS = ("score",)  # the sub-commands register() adds


def _name_rate(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    try:
        rate = float(value)
    except ValueError:
        rate = -1.0
    if not sep or not name or not 0 <= rate <= 1:
        raise argparse.ArgumentTypeError(f"expected NAME=RATE with RATE in [0, 1], got {text!r}")
    return name, rate


def register(sub) -> None:
    from fmaudit.scoring.functions import FUNCTIONS

    p = sub.add_parser("score", help="score a log of model outputs with feedback functions (table + report)")
    p.add_argument("file", metavar="FILE", type=Path, help="JSONL or CSV log, one record per output")
    p.add_argument("--feedback", required=True,
                   help=f"comma-separated feedback functions: {', '.join(sorted(FUNCTIONS))}")
    p.add_argument("--out", required=True, type=Path, help="folder for scores.jsonl, scores.csv and reports/")
    p.add_argument("--text-field", help="field holding the output text (default: response, output, completion "
                                        "or text, the first present)")
    p.add_argument("--prompt-field", help="field holding the prompt (default: prompt, input or question if present)")
    p.add_argument("--id-field", default="id", help="field holding a record id (default: id; else the line number)")
    p.add_argument("--max-flagged", action="append", type=_name_rate, default=[], metavar="NAME=RATE",
                   help="check: at most this share of records flagged by NAME (repeatable); exit 1 when exceeded")
    p.set_defaults(func=cmd_score)


def cmd_score(args) -> int:
    from fmaudit.audits.score_log import score_log
    from fmaudit.errors import UsageError
    from fmaudit.reports.table import format_checks

    names = [n.strip() for n in args.feedback.split(",") if n.strip()]
    if not names:
        raise UsageError("--feedback needs at least one name")
    report = score_log(args.file, names, args.out, text_field=args.text_field, prompt_field=args.prompt_field,
                       id_field=args.id_field, max_flagged=dict(args.max_flagged))
    for name, m in report["details"]["intervals"].items():
        print(f"{name:32s} {m['value']:.4f}  [{m['ci_low']:.4f}, {m['ci_high']:.4f}]  n={m['n']}")
    if report["checks"]:
        print(format_checks(report["checks"]))
    print(f"table: {args.out / 'scores.jsonl'} and scores.csv; report: {args.out / 'reports' / 'score.json'}")
    return 1 if any(not c["passed"] and c["severity"] == "error" for c in report["checks"]) else 0
