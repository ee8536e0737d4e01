"""``fmaudit audit``: audit a checkpoint (or every checkpoint of a training run) against a policy."""

from __future__ import annotations

from pathlib import Path

from fmaudit.errors import UsageError

COMMANDS = ("audit",)  # the sub-commands register() adds


def register(sub) -> None:
    p = sub.add_parser("audit", help="audit a causal-LM checkpoint (or a training run folder) against a policy",
                       description="Writes OUT/reports/<audit>.json, OUT/items/<audit>.jsonl and "
                                   "OUT/reports/summary.json. Exit 0: every check passed; 1: a check failed; "
                                   "2: bad input.")
    p.add_argument("checkpoint", metavar="CKPT", help="local transformers causal-LM folder, a training run folder "
                                                      "(audits every RUN/checkpoints/step-N), or with --rescore "
                                                      "a previous audit's OUT folder")
    p.add_argument("--policy", required=True, help="policy file or shipped policy name (its audits: section)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--only", help="comma-separated audit names to run (default: every audit of the policy)")
    p.add_argument("--data", action="append", default=[], metavar="AUDIT=FILE",
                   help="prompt or pair file for one audit, instead of the policy's (repeatable)")
    p.add_argument("--compare", metavar="CKPT2|AUDIT_DIR",
                   help="baseline checkpoint or saved audit folder: adds paired before/after deltas and flags "
                        "significant regressions (Benjamini-Hochberg across metrics)")
    p.add_argument("--alpha", type=float, default=0.05, help="false discovery rate for --compare (default 0.05)")
    p.add_argument("--device", help="cpu, cuda, cuda:N, or auto (spread a large checkpoint over every GPU with "
                                    "accelerate's device_map)")
    p.add_argument("--threads", type=int, metavar="N",
                   help="torch threads on CPU (default: 1 for a model under 50M parameters, whose matrices are too "
                        "small for threads to pay; torch's default for a larger one)")
    p.add_argument("--engine", default="local", choices=["local", "ray"],
                   help="run folders: ray audits the checkpoints as Ray tasks (same reports; default local)")
    p.add_argument("--address", help="Ray cluster address (with --engine ray; default: a private local instance)")
    p.add_argument("--rescore", action="store_true",
                   help="CKPT is a previous audit folder: recompute results from its saved items under this "
                        "policy's gates and scorers (saved outputs re-scored, nothing generated), no model")
    p.add_argument("--trust-remote-code", action="store_true", help="allow custom model code from the folder")
    p.add_argument("--allow-pickle", action="store_true", help="allow pickle (.bin) weights")
    p.set_defaults(func=cmd_audit)


def parse_data(values: list[str]) -> dict[str, Path]:
    out = {}
    for v in values:
        name, sep, path = v.partition("=")
        if not sep or not name or not path:
            raise UsageError(f"--data {v!r}: expected AUDIT=FILE")
        if not Path(path).is_file():
            raise UsageError(f"--data {v!r}: {path}: no such file")
        out[name] = Path(path)
    return out


def cmd_audit(args) -> int:
    from fmaudit.audits.runner import AuditOptions, run_audit
    from fmaudit.policy import load_policy, resolve_policy_path
    from fmaudit.reports.table import print_summary

    if not 0 < args.alpha < 1:
        raise UsageError(f"--alpha {args.alpha}: must be between 0 and 1")
    target = Path(args.checkpoint)
    if not target.exists():
        raise UsageError(f"{target}: no such checkpoint or folder")
    if args.threads is not None and args.threads < 1:
        raise UsageError(f"--threads {args.threads}: must be at least 1")
    if args.address and args.engine != "ray":
        raise UsageError("--address goes with --engine ray")
    if args.rescore and args.compare:
        raise UsageError("--rescore and --compare cannot be combined: compare the re-scored folder afterwards")
    options = AuditOptions(only=[n.strip() for n in args.only.split(",") if n.strip()] if args.only else None,
                           data=parse_data(args.data), device=args.device,
                           compare=Path(args.compare) if args.compare else None, alpha=args.alpha,
                           engine=args.engine, address=args.address,
                           trust_remote_code=args.trust_remote_code, allow_pickle=args.allow_pickle,
                           threads=args.threads)
    summary = run_audit(target, load_policy(resolve_policy_path(args.policy)), args.out, options, rescore_from=args.rescore)
    print_summary(summary)
    print(f"reports in {Path(args.out) / 'reports'}, items in {Path(args.out) / 'items'}")
    return summary["exit_code"]
