"""From finding to fix: ``trace`` (a failed audit check -> the training documents behind it) and ``remediate``
(a policy change, the filter re-run, and with ``--retrain`` the before/after model and its paired audit)."""

from __future__ import annotations

from fmaudit.cli.argtypes import positive_int

COMMANDS = ("trace", "remediate")  # the sub-commands register() adds


def register(sub) -> None:
    p = sub.add_parser("trace", help="rank the training documents behind a failed audit check (influence functions), "
                                     "joined with what the data stages recorded about them")
    p.add_argument("audit_dir", metavar="AUDIT_DIR", help="an `fmaudit audit` output folder")
    p.add_argument("--check", required=True, help="the failed check: NAME or AUDIT:NAME")
    p.add_argument("--top", type=positive_int, default=10, help="documents to list (default 10)")
    p.add_argument("--candidates", type=positive_int, default=100,
                   help="TF-IDF candidates scored per failing item (default 100)")
    p.add_argument("--max-items", type=positive_int, default=16, help="failing items explained at most (default 16)")
    p.add_argument("--fit-documents", type=positive_int,
                   help="fit the EK-FAC factors on the first N training documents (default: all of them)")
    p.add_argument("--checkpoint", help="the audited checkpoint, when the audit report's path is not at hand")
    p.add_argument("--data", help="its training data folder, when the checkpoint is not an fmaudit training run's")
    p.add_argument("--out", help="where trace.json goes (default AUDIT_DIR/trace)")
    p.set_defaults(func=cmd_trace)

    p = sub.add_parser("remediate", help="turn a trace into a policy change and re-run the filter; --retrain also "
                                         "retrains, re-audits and compares")
    p.add_argument("trace", metavar="TRACE", help="trace.json (or its folder)")
    p.add_argument("--policy", required=True, help="the policy the traced data run used")
    p.add_argument("--out", required=True, help="output folder: policy.yaml, filtered/, remediation.json")
    p.add_argument("--action", choices=["drop", "threshold", "augment"], default="drop",
                   help="drop the traced documents (default), tighten the toxicity threshold, or augment with cda")
    p.add_argument("--retrain", action="store_true", help="retrain (same settings, seed and tokenizer), re-audit "
                                                          "and compare with the traced audit")
    p.add_argument("--audit-policy", help="policy of the re-audit (default: the traced audit's)")
    p.add_argument("--workers", type=positive_int, help="filter worker processes")
    p.add_argument("--device", help="torch device for retraining and the audit")
    p.set_defaults(func=cmd_remediate)


def cmd_trace(args) -> int:
    from fmaudit.remedy.trace import TRACE_FILE, format_trace, trace_check

    from fmaudit.explain.influence import InfluenceSettings

    settings = InfluenceSettings(fit_max_documents=args.fit_documents)
    trace = trace_check(args.audit_dir, args.check, top_k=args.top, candidates=args.candidates,
                        max_items=args.max_items, checkpoint=args.checkpoint, data=args.data, out=args.out,
                        settings=settings)
    print(format_trace(trace))
    print(f"trace: {(args.out or f'{args.audit_dir}/trace')}/{TRACE_FILE}")
    return 0


def cmd_remediate(args) -> int:
    from fmaudit.errors import EXIT_CHECK_FAILED
    from fmaudit.remedy.remediate import format_remediation, remediate

    record = remediate(args.trace, args.policy, args.out, action=args.action, workers=args.workers)
    print(format_remediation(record))
    if not args.retrain:
        return 0
    from fmaudit.remedy.rerun import format_rerun, rerun

    report = rerun(args.out, audit_policy=args.audit_policy, device=args.device)
    print(format_rerun(report))
    failed = [c for c in report["checks"] if not c["passed"] and c["severity"] == "error"]
    return EXIT_CHECK_FAILED if failed else 0
