"""``fmaudit tune NAME CKPT --policy P --out DIR``: run any registered model stage (built-in or plug-in) that
needs only a checkpoint and its policy section; ``fmaudit tune --list`` names them. Stages with inputs of
their own have their own commands too (``refusal-tune``, ``adapt``)."""

from __future__ import annotations

from pathlib import Path

COMMANDS = ("tune",)  # the sub-commands register() adds


def register(sub) -> None:
    p = sub.add_parser("tune", help="run a registered model stage on a checkpoint with the policy's tune: settings")
    p.add_argument("name", nargs="?", metavar="NAME", help="model stage (see --list)")
    p.add_argument("checkpoint", nargs="?", metavar="CKPT", help="causal-LM checkpoint folder")
    p.add_argument("--policy", help="policy with a tune: {NAME: {...}} section (defaults when absent)")
    p.add_argument("--out", help="output folder (new checkpoint in OUT/model, report in OUT/reports)")
    p.add_argument("--device", help="torch device")
    p.add_argument("--list", action="store_true", help="list the registered model stages")
    p.set_defaults(func=cmd_tune)


def cmd_tune(args) -> int:
    from fmaudit.errors import EXIT_CHECK_FAILED, UsageError
    from fmaudit.policy import load_policy
    from fmaudit.tune import MODEL_STAGES

    if args.list:
        for name, cls in MODEL_STAGES.items():
            print(f"{name:16s} {getattr(cls, 'description', '')}")
        return 0
    if not (args.name and args.checkpoint and args.out):
        raise UsageError("give NAME CKPT --out DIR (or --list)")
    cls = MODEL_STAGES.get(args.name)
    policy = load_policy(args.policy) if args.policy else None
    settings = policy.tune_settings(args.name) if policy is not None else cls.Settings()
    stage = cls(settings)
    stage.preflight(Path(args.checkpoint))
    result = stage.run(Path(args.checkpoint), Path(args.out), policy=policy, device=args.device)
    where = result.checkpoint or result.artefact or result.out
    print(f"{args.name}: {'done' if result.completed else 'stopped (run again to resume)'} -> {where}")
    return EXIT_CHECK_FAILED if result.failed_checks else 0
