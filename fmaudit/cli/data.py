"""Data-job commands: ``filter``, ``policy check|schema|list``, ``demo-corpus``, ``demo``."""

from __future__ import annotations

import json

from fmaudit.cli.argtypes import RegistryChoices, positive_int
from fmaudit.errors import InputError, UsageError

COMMANDS = ("filter", "policy", "demo-corpus", "demo")  # the sub-commands register() adds


def register(sub) -> None:
    p = sub.add_parser("filter", help="stream a corpus through the policy's data stages")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="JSONL(.gz), Parquet or text files, or folders of them")
    p.add_argument("--policy", required=True, help="policy YAML file")
    p.add_argument("--out", required=True, help="output folder (data/, dropped/, quarantine/, reports/)")
    p.add_argument("--stages", help="comma-separated: run only these stages of the policy")
    p.add_argument("--workers", type=positive_int, help="worker processes (default: policy, else all cores)")
    engine = p.add_argument("--engine", default="local", help="execution engine (default: local)")
    engine.choices = RegistryChoices("fmaudit.pipeline.engines:ENGINES")
    p.add_argument("--address", help="Ray cluster address (with --engine ray)")
    p.add_argument("--truth", help="ground-truth file of a demo corpus, for precision/recall in reports")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_filter)

    p = sub.add_parser("policy", help="validate or describe policy files")
    psub = p.add_subparsers(dest="policy_command", metavar="ACTION")
    psub.required = True
    c = psub.add_parser("check", help="validate policy files or shipped policies by name (exit 2 naming the "
                                      "file and field on error)")
    c.add_argument("files", nargs="+", metavar="FILE|NAME")
    c.add_argument("--ready", action="store_true", help="also exit 2 when something a run needs (a spaCy model, "
                                                        "a key, a scorer checkpoint) is missing on this machine")
    c.set_defaults(func=cmd_policy_check)
    c = psub.add_parser("schema", help="print the settings of every stage, model stage, audit and scorer as JSON "
                                       "Schema")
    c.set_defaults(func=cmd_policy_schema)
    c = psub.add_parser("list", help="list the policies shipped with fmaudit")
    c.set_defaults(func=cmd_policy_list)

    p = sub.add_parser("demo-corpus", help="write the seeded synthetic demo corpus and its ground truth")
    p.add_argument("out", metavar="OUT")
    p.add_argument("--docs", type=positive_int, default=2000, help="number of documents (default 2000)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.set_defaults(func=cmd_demo_corpus)

    p = sub.add_parser("demo", help="run the whole pipeline on the synthetic demo corpus")
    p.add_argument("--out", default="reports/demo", help="output folder (default reports/demo)")
    p.add_argument("--quick", action="store_true", help="a small run of a couple of minutes")
    p.add_argument("--policy", help="policy file (default policies/demo.yaml)")
    p.add_argument("--workers", type=positive_int, help="worker processes for data stages")
    p.set_defaults(func=cmd_demo)


def cmd_filter(args) -> int:
    from fmaudit.reports.environment import prefetch

    prefetch()  # the reports' facts about this machine (git, package versions), gathered while the job loads
    from fmaudit.pipeline.runner import run_filter
    from fmaudit.policy import load_policy
    from fmaudit.reports.table import print_summary

    from fmaudit.policy import preflight

    policy = load_policy(args.policy)
    stages = [s.strip() for s in args.stages.split(",") if s.strip()] if args.stages else None
    preflight(policy, policy.select(stages))  # what the stages need, named by policy line, before any work
    options = {"address": args.address} if args.address else {}
    if args.address and args.engine != "ray":
        raise UsageError("--address goes with --engine ray")
    result = run_filter(policy, args.inputs, args.out, stages=stages, workers=args.workers, engine=args.engine,
                        engine_options=options, truth=args.truth, progress=not args.no_progress)
    if result.skipped:
        print(f"{args.out}: job already complete; nothing to do")
    print_summary(result.summary, result.counts)
    print(f"summary: {result.out / 'reports' / 'summary.html'}")
    return result.exit_code


def cmd_demo_corpus(args) -> int:
    from fmaudit.demo.corpus import generate_corpus

    info = generate_corpus(args.out, docs=args.docs, seed=args.seed)
    print(f"wrote {info['documents']} documents and {info['malformed']} malformed records to {info['corpus']}; "
          f"ground truth in {info['truth']}")
    return 0


def cmd_demo(args) -> int:
    from fmaudit.demo.run import run_demo

    return run_demo(args.out, quick=args.quick, policy=args.policy, workers=args.workers)


def cmd_policy_check(args) -> int:
    from fmaudit.policy import NOT_CHECKED, check_model_config, check_policy_requirements, load_policy, preflight

    for f in args.files:
        policy = load_policy(f)
        problems: list[str] = []
        check_policy_requirements(policy, problems=problems)
        check_model_config(policy)
        checked = preflight(policy, problems=problems, models=True)
        parts = [f"stages: {', '.join(s.name for s in policy.stages) or 'none'}"]
        parts += [f"{key}: {', '.join(names)}" for key, names in (("tune", policy.tune), ("audits", policy.audits))
                  if names]
        print(f"{policy.path}: ok (policy {policy.name!r}; {'; '.join(parts)})")
        if policy.model.train is not None:
            checked.append("train.model: config built and sized on the meta device")
        for line in checked:
            print(f"  checked: {line}")
        for line in problems:
            print(f"  NOT READY: {line}")
        print(f"  not checked: {NOT_CHECKED}")
        if problems and getattr(args, "ready", False):
            raise InputError(f"{policy.path}: a run needs what is missing here ({len(problems)} NOT READY above)")
    return 0


def cmd_policy_schema(args) -> int:
    from fmaudit.audits import AUDITS
    from fmaudit.policy import PolicyModel
    from fmaudit.scoring import SCORERS
    from fmaudit.stages import STAGES
    from fmaudit.tune import MODEL_STAGES

    out = {"policy": PolicyModel.model_json_schema()}
    for key, registry in (("stages", STAGES), ("tune", MODEL_STAGES), ("audits", AUDITS), ("scorers", SCORERS)):
        out[key] = {name: cls.Settings.model_json_schema() for name, cls in registry.items()}
    print(json.dumps(out, indent=2))
    return 0


def cmd_policy_list(args) -> int:
    from fmaudit.policy import load_policy, shipped_policies, shipped_policy

    for name in shipped_policies():
        policy = load_policy(shipped_policy(name))
        print(f"{name:12s} {policy.model.description.strip().splitlines()[0] if policy.model.description else ''}"
              f"  ({shipped_policy(name)})")
    return 0
