"""``fmaudit adapt``: adapt a checkpoint to a labelled task under fairness constraints (model stage), and
``fmaudit adapt predict`` with the chosen model."""

from __future__ import annotations

import sys
from pathlib import Path

from fmaudit.errors import EXIT_CHECK_FAILED, EXIT_OK, UsageError

COMMANDS = ("adapt",)  # the sub-commands register() adds

USAGE = "fmaudit adapt CKPT --policy P [--task FILE] --out DIR  |  fmaudit adapt predict DIR FILE [--out FILE]"


def register(sub) -> None:
    p = sub.add_parser("adapt", usage=USAGE, help="fit fairness-constrained classifiers on a checkpoint's features, "
                                                  "choose one within the policy's disparity bound")
    p.add_argument("args", nargs="+", metavar="CKPT | predict DIR FILE",
                   help="a checkpoint folder; or `predict`, an adapt output folder and a table to label")
    p.add_argument("--policy", help="policy YAML with a tune: {adapt: ...} section")
    p.add_argument("--task", help="task table (CSV, JSONL or Parquet): text, label, sensitive features "
                                  "(default: the policy's tune.adapt.task)")
    p.add_argument("--device", help="torch device for the features (default: cpu)")
    p.add_argument("--out", help="adapt: output folder (model, reports/); predict: JSONL file (default: stdout)")
    p.set_defaults(func=cmd_adapt)


def cmd_adapt(args) -> int:
    if args.args[0] == "predict":
        if len(args.args) != 3 or args.policy or args.task:
            raise UsageError(f"usage: {USAGE}")
        return _predict(Path(args.args[1]), Path(args.args[2]), args.out)
    if len(args.args) != 1 or not (args.policy and args.out):
        raise UsageError(f"usage: {USAGE}")
    from fmaudit.tune import MODEL_STAGES
    from fmaudit.tune.adapt.policy import adapt_settings

    policy, settings = adapt_settings(args.policy)
    stage = MODEL_STAGES.get("adapt")(settings.model_copy(update={"task": args.task} if args.task else {}))
    stage.run(Path(args.args[0]), Path(args.out), policy=policy, device=args.device)
    result = stage.result_
    print(result.table)
    m = result.report["metrics"]
    metric = settings.bound.metric
    if result.chosen:
        print(f"\nchosen: {result.chosen} (accuracy {m['chosen_accuracy']:.3f}, {metric} "
              f"{m['chosen_' + metric]:.3f} <= {settings.bound.max:g}; accuracy cost {m['accuracy_cost']:+.3f} "
              f"against unconstrained) -> {Path(args.out) / 'model.joblib'}")
    else:
        print(f"\nno model has {metric} <= {settings.bound.max:g}: check failed, nothing saved")
    for w in result.report["details"]["group_warnings"]:
        print(f"warning: {w}", file=sys.stderr)
    print(f"report: {Path(args.out) / 'reports' / 'fairness.json'}")
    return EXIT_OK if result.passed else EXIT_CHECK_FAILED


def _predict(folder: Path, table: Path, out) -> int:
    from fmaudit.corpus import dumps
    from fmaudit.tune.adapt.predict import predict_rows

    rows = list(predict_rows(folder, table))  # all or nothing: no half-written output on an input error
    text = "".join(dumps(r) + "\n" for r in rows)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return EXIT_OK
