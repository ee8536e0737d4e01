"""``fmaudit refusal-tune CKPT --policy P --out CKPT2``: the refusal model stage."""

from __future__ import annotations

COMMANDS = ("refusal-tune",)  # the sub-commands register() adds


def register(sub) -> None:
    p = sub.add_parser("refusal-tune", help="refusal fine-tuning (SFT and/or DPO, policy tune.refusal) of a causal "
                                            "LM checkpoint, with refusal and over-refusal before and after")
    p.add_argument("checkpoint", help="local transformers causal-LM folder")
    p.add_argument("--policy", required=True, help="policy YAML (or a shipped policy's name); tune: {refusal: ...}")
    p.add_argument("--out", required=True, help="the tuned checkpoint's folder (with reports/, items/, runs/); "
                                                "rerun the same command to resume")
    p.add_argument("--stop-after", type=int, default=None, help="stop each training phase after this step")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_refusal_tune)


def cmd_refusal_tune(args) -> int:
    from pathlib import Path

    from fmaudit.policy import load_policy
    from fmaudit.tune import MODEL_STAGES

    policy = load_policy(args.policy)
    stage = MODEL_STAGES.get("refusal")(policy.tune_settings("refusal"))
    result = stage.run(Path(args.checkpoint), Path(args.out), policy=policy, stop_after=args.stop_after,
                       progress=not args.no_progress, device=args.device)
    if not result.completed:
        print(f"{args.out}: stopped early; run the same command again to resume")
        return 0
    if result.report is None:  # not the main process of a torchrun job
        return 0
    for line in summary_lines(result.report):
        print(line)
    for c in result.failed_checks:
        print(f"check failed: {c['name']} = {c['value']:.3f} (threshold {c['threshold']}, {c['direction']})")
    return 1 if result.failed_checks else 0


def summary_lines(report: dict) -> list[str]:
    """Before -> after figures of a refusal report, for the terminal and the demo."""
    m, d = report["metrics"], report["details"]

    def pct(x):
        return "n/a" if x is None else f"{100 * x:.0f}%"
    lines = [f"refusal on held-out harmful prompts: {pct(m['refusal_rate_before'])} -> {pct(m['refusal_rate'])} "
             f"(n={m['harmful_prompts']}); over-refusal on safe contrast prompts: "
             f"{pct(m['over_refusal_rate_before'])} -> {pct(m['over_refusal_rate'])} (n={m['safe_prompts']}); "
             f"perplexity {m['perplexity_before']:.1f} -> {m['perplexity']:.1f}"]
    if d.get("lora"):
        lora = d["lora"]
        lines.append(f"LoRA r={lora['r']} alpha={lora['alpha']:g}: {lora['trainable_parameters']:,} of "
                     f"{lora['total_parameters']:,} parameters trained, merged into the checkpoint")
    per = d["after"]["refusal_by_perturbation"]
    if per:
        lines.append("refusal per perturbation (before -> after): " + ", ".join(
            f"{k} {pct(d['before']['refusal_by_perturbation'][k]['rate'])} -> {pct(v['rate'])}"
            for k, v in per.items()))
    return lines
