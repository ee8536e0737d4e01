"""Explanation commands: ``explain`` (token attribution, captum) and ``influence`` (training documents,
kronfluence)."""

from __future__ import annotations

from fmaudit.cli.argtypes import positive_int
from fmaudit.errors import UsageError

COMMANDS = ("explain", "influence")  # the sub-commands register() adds

ATTRIBUTION_METHODS = "feature_ablation,shapley_sampling,integrated_gradients"


def register(sub) -> None:
    p = sub.add_parser("explain", help="attribute a continuation to the prompt's tokens (captum)")
    p.add_argument("checkpoint", metavar="CKPT", help="checkpoint folder (any local causal-LM folder)")
    p.add_argument("--prompt", action="append", required=True, help="a prompt (repeat for several)")
    p.add_argument("--target", action="append", help="the continuation to explain, one per --prompt "
                                                     "(default: the greedy continuation)")
    p.add_argument("--methods", default=ATTRIBUTION_METHODS, help=f"comma-separated (default {ATTRIBUTION_METHODS})")
    p.add_argument("--max-new-tokens", type=positive_int, default=12, help="length of a generated target")
    p.add_argument("--shapley-samples", type=positive_int, default=16, help="permutations for Shapley sampling")
    p.add_argument("--ig-steps", type=positive_int, default=64, help="integration steps of integrated gradients")
    p.add_argument("--counterfactual", action="store_true",
                   help="also swap the prompt's gendered words and names (CDA pairs) and report the change")
    p.add_argument("--swap", action="append", default=[], metavar="WORD=OTHER",
                   help="an extra counterfactual pair beside the CDA lists, e.g. --swap doctor=nurse")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="reports/explain", help="reports folder (explain.json and plots)")
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser("influence", help="training documents that most influenced outputs (kronfluence EK-FAC)")
    p.add_argument("checkpoint", metavar="CKPT", help="checkpoint folder (any local causal-LM folder)")
    p.add_argument("--data", required=True, help="the training data folder (a filter job's data/, or the job)")
    p.add_argument("--query", nargs="+", action="extend", required=True, metavar="TEXT",
                   help="texts whose influences are wanted (PROMPT|||COMPLETION measures only the completion)")
    p.add_argument("--top", type=positive_int, default=5, help="most and least influential documents shown")
    p.add_argument("--prefilter", choices=["tfidf", "none"], default="tfidf",
                   help="score only the documents most similar to each query (default), or all")
    p.add_argument("--candidates", type=positive_int, default=100, help="candidates per query with --prefilter")
    p.add_argument("--modules", choices=["mlp", "attention", "all"], default="mlp", help="layers tracked")
    p.add_argument("--max-length", type=positive_int, default=128, help="tokens of a document scored")
    p.add_argument("--query-rank", type=positive_int, help="low-rank query gradients (cheaper, approximate)")
    p.add_argument("--cache-dir", help="factor cache (default $FMAUDIT_CACHE/influence or ~/.cache/fmaudit)")
    p.add_argument("--out", default="reports/influence", help="reports folder (influence.json and plots)")
    p.set_defaults(func=cmd_influence)


def cmd_explain(args) -> int:
    import time

    from fmaudit.core.checkpoint import load_checkpoint
    from fmaudit.explain import require
    from fmaudit.explain.attribution import attribute
    from fmaudit.core.checkpoint import checkpoint_sha256
    from fmaudit.explain.report import prompts_protocol, write_explain_report
    from fmaudit.reports import new_run_id, now_iso

    require("captum")
    targets = args.target or [None] * len(args.prompt)
    if len(targets) != len(args.prompt):
        raise UsageError(f"{len(args.prompt)} --prompt but {len(targets)} --target: give one target per prompt, or none")
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    started, t0 = now_iso(), time.perf_counter()
    model, tokenizer = load_checkpoint(args.checkpoint)
    explanations = [attribute(model, tokenizer, p, t, methods=methods, max_new_tokens=args.max_new_tokens,
                              shapley_samples=args.shapley_samples, ig_steps=args.ig_steps, seed=args.seed)
                    for p, t in zip(args.prompt, targets)]
    counterfactuals = []
    if args.counterfactual:
        from fmaudit.explain.counterfactual import counterfactual_attribution

        extra = dict(_pair(x) for x in args.swap)
        counterfactuals = [counterfactual_attribution(model, tokenizer, e.prompt, e.target, extra_pairs=extra,
                                                      seed=args.seed) for e in explanations]
    protocol = {**prompts_protocol(args.prompt), "decoding": {"greedy": True, "max_new_tokens": args.max_new_tokens},
                "methods": methods, "seed": args.seed, "shapley_samples": args.shapley_samples,
                "ig_steps": args.ig_steps, "targets_given": args.target is not None}
    report = write_explain_report(args.out, stage="explain", run_id=new_run_id(), started_at=started,
                                  checkpoint=args.checkpoint, checkpoint_sha256=checkpoint_sha256(args.checkpoint),
                                  explanations=explanations, counterfactuals=counterfactuals, protocol=protocol,
                                  wall_s=time.perf_counter() - t0)
    for row in report["details"]["attribution"]:
        print(f"{row['prompt']!r} -> {row['target']!r}: log p = {row['target_logprob']:.3f}")
        for name, a in row["attributions"].items():
            top = sorted(zip(row["input_tokens"], a["seq_attr"]), key=lambda x: -abs(x[1]))[:3]
            print(f"  {name:22s} delta {a['convergence_delta']:+.4f}  top: "
                  + ", ".join(f"{t!r} {v:+.3f}" for t, v in top))
    for row in report["details"].get("counterfactual", []):
        parts = ", ".join(f"{s['original']}->{s['swap']} {s['attribution']:+.3f}" for s in row["segments"])
        print(f"  counterfactual {row['counterfactual_prompt']!r}: log p(target) change "
              f"{-row['logprob_change']:+.3f} ({parts or 'no swappable word'})")
    print(f"report: {args.out}/explain.json ({len(report['plots'])} plots)")
    return 0


def _pair(text: str) -> tuple[str, str]:
    word, sep, other = text.partition("=")
    if not sep or not word.strip() or not other.strip():
        raise UsageError(f"--swap {text!r}: expected WORD=OTHER, e.g. doctor=nurse")
    return word.strip(), other.strip()


def cmd_influence(args) -> int:
    import time

    from fmaudit.explain import require
    from fmaudit.core.checkpoint import checkpoint_sha256
    from fmaudit.explain.influence import InfluenceSettings
    from fmaudit.explain.ranking import rank_training_documents
    from fmaudit.explain.report import prompts_protocol, write_explain_report
    from fmaudit.reports import new_run_id, now_iso

    require("kronfluence")
    queries = [tuple(q.split("|||", 1)) if "|||" in q else q for q in args.query]
    settings = InfluenceSettings(modules=args.modules, max_length=args.max_length, query_rank=args.query_rank)
    started, t0 = now_iso(), time.perf_counter()
    result = rank_training_documents(args.checkpoint, args.data, queries, args.top, prefilter=args.prefilter,
                                     candidates=args.candidates, settings=settings, cache_dir=args.cache_dir)
    protocol = {**prompts_protocol(args.query), "prefilter": result.prefilter, "candidates": args.candidates,
                "settings": settings.model_dump(), "factors_key": result.factors_key}
    report = write_explain_report(args.out, stage="influence", run_id=new_run_id(), started_at=started,
                                  checkpoint=args.checkpoint, checkpoint_sha256=checkpoint_sha256(args.checkpoint),
                                  influence=result, data_dir=args.data, protocol=protocol,
                                  wall_s=time.perf_counter() - t0)
    print(f"{result.corpus_size} training documents; {result.candidates_scored} scored (coverage "
          f"{result.coverage:.1%}, {result.prefilter}); factors {'from cache' if result.factors_cached else 'fitted'} "
          f"({result.fit_seconds:.1f}s), scores {result.score_seconds:.1f}s")
    for q in result.queries:
        print(f"{q.query!r} ({q.candidates} candidates)")
        for label, docs in (("most", q.most), ("least", q.least)):
            print(f"  {label}: " + ", ".join(f"{d.doc_id} {d.score:+.4g}" for d in docs))
    print(f"report: {args.out}/influence.json ({len(report['plots'])} plots)")
    return 0
