"""The explanation step of ``fmaudit demo``: one greedy generation of the demo model, attributed to its prompt
tokens (captum), and the training documents that most influenced it (kronfluence EK-FAC, factors fitted on
a sample of the filtered corpus, candidates pre-selected by TF-IDF). Writes ``explain/reports/explain.json``."""

from __future__ import annotations

import time

from fmaudit.demo import demo_step

PROMPT_WORDS = 6
NEW_TOKENS = 8
FIT_DOCUMENTS = {True: 120, False: 300}   # quick / full: documents the factors are fitted on
CANDIDATES = {True: 40, False: 100}        # TF-IDF candidates scored
MAX_LENGTH = 64
TOP = 3


@demo_step(order=45)
def explain_step(ctx) -> None:
    """Explain one continuation of a held-out prompt: token attributions and most influential documents."""
    import importlib.util

    from fmaudit.core.checkpoint import load_checkpoint
    from fmaudit.core.data import is_held_out
    from fmaudit.corpus import read_documents
    from fmaudit.explain.attribution import attribute
    from fmaudit.core.checkpoint import checkpoint_sha256
    from fmaudit.explain.influence import InfluenceAnalysis, InfluenceSettings
    from fmaudit.explain.ranking import rank_documents
    from fmaudit.explain.report import prompts_protocol, write_explain_report
    from fmaudit.reports import new_run_id, now_iso

    model_dir = ctx.out / "train" / "model"
    if not model_dir.is_dir():
        ctx.notes.append("explain: skipped (no trained demo model)")
        return
    missing = [p for p in ("captum", "kronfluence") if importlib.util.find_spec(p) is None]
    if missing:
        ctx.notes.append(f"explain: skipped ({', '.join(missing)} not installed: pip install 'fmaudit[explain]')")
        return
    started, t0 = now_iso(), time.perf_counter()
    settings = ctx.policy.model.train
    docs = list(read_documents([ctx.filter_dir / "data"]))
    held_out = [d.text for d in docs if is_held_out(d.id, settings.holdout_fraction)]
    train_docs = [d for d in docs if not is_held_out(d.id, settings.holdout_fraction)]
    prompt = " ".join(held_out[0].split()[:PROMPT_WORDS])
    model, tokenizer = load_checkpoint(model_dir)
    expl = attribute(model, tokenizer, prompt, max_new_tokens=NEW_TOKENS, shapley_samples=8, ig_steps=32,
                     seed=ctx.seed)
    influence_settings = InfluenceSettings(max_length=MAX_LENGTH, fit_max_documents=FIT_DOCUMENTS[ctx.quick])
    analysis = InfluenceAnalysis(model, tokenizer, train_docs, settings=influence_settings,
                                 cache_dir=ctx.out / "explain" / "cache", model_hash=checkpoint_sha256(model_dir))
    result = rank_documents(analysis, [(prompt, expl.target)], TOP, candidates=CANDIDATES[ctx.quick])
    reports = ctx.out / "explain" / "reports"
    protocol = {**prompts_protocol([prompt]), "decoding": {"greedy": True, "max_new_tokens": NEW_TOKENS},
                "seed": ctx.seed, "influence": influence_settings.model_dump(), "candidates": CANDIDATES[ctx.quick]}
    report = write_explain_report(reports, stage="explain", run_id=new_run_id(), started_at=started,
                                  checkpoint=str(model_dir), checkpoint_sha256=analysis.model_hash,
                                  explanations=[expl], influence=result, data_dir=str(ctx.filter_dir / "data"),
                                  policy=ctx.policy, protocol=protocol, wall_s=time.perf_counter() - t0)
    ctx.reports_dirs.append(reports)
    row = report["details"]["attribution"][0]
    ig = row["attributions"]["integrated_gradients"]
    top = sorted(zip(row["input_tokens"], ig["seq_attr"]), key=lambda x: -abs(x[1]))[:3]
    q = result.queries[0]
    ctx.notes.append(f"explain: {row['prompt']!r} -> {row['target']!r} (log p {row['target_logprob']:.2f}); "
                     f"integrated gradients (delta {ig['convergence_delta']:+.3f}) top prompt tokens: "
                     + ", ".join(f"{t!r} {v:+.2f}" for t, v in top))
    ctx.notes.append(f"influence: most influential of {q.candidates} TF-IDF candidates ({result.coverage:.0%} of "
                     f"{result.corpus_size} training documents): "
                     + ", ".join(f"{d.doc_id} ({d.score:+.3g})" for d in q.most) + f" -> {reports / 'explain.json'}")
