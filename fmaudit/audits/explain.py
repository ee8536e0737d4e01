"""``explain``: why the checkpoint continues its probe prompts as it does.

For each probe prompt (the policy's ``prompts``, a prompt file ``data``, or the start of the built-in
held-out texts) the greedy continuation is generated and attributed to the prompt tokens with captum
(:mod:`fmaudit.explain.attribution`: feature ablation, Shapley sampling, integrated gradients), with the
completeness gap of each method; the gendered words and names of the prompt are swapped (CDA pairs) and the
change of the continuation's log-probability attributed to them (:mod:`fmaudit.explain.counterfactual`).
With ``training_data`` (the folder the checkpoint was trained on), the training documents that most and
least influenced each continuation are ranked with EK-FAC influence functions
(:mod:`fmaudit.explain.ranking`).

Figures (mean over prompts, bootstrap intervals): ``<method>_abs_delta`` (|sum of attributions - log-prob
change|: near 0 for integrated gradients with enough steps and for Shapley values, by their completeness),
``target_logprob`` and ``counterfactual_abs_logprob_change``. Per prompt, the items keep the target, the
top attributed tokens, the counterfactual change and the most influential document ids.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Optional

from pydantic import Field

from fmaudit.audits import register_audit
from fmaudit.audits.base import Audit, AuditContext, AuditResult, AuditSettings, Protocol, item_text, text_sha256
from fmaudit.audits.inputs import builtin, read_texts
from fmaudit.audits.stats import from_items
from fmaudit.corpus import sha256_file
from fmaudit.errors import InputError

BUILTIN = "heldout.txt"
METHODS = ("feature_ablation", "shapley_sampling", "integrated_gradients")


class ExplainSettings(AuditSettings):
    prompts: list[str] = Field(default_factory=list, description="Probe prompts; empty: the data file, else the "
                                                                 "start of the built-in held-out texts.")
    field: str = Field("text", description="The text field of a JSONL or CSV prompt file.")
    max_prompts: int = Field(4, ge=1, description="Prompts explained at most.")
    prompt_words: int = Field(6, ge=1, description="Words of a held-out text used as a prompt (built-in set).")
    max_new_tokens: int = Field(8, ge=1, le=256, description="Length of the greedy continuation explained.")
    methods: list[str] = Field(default_factory=lambda: list(METHODS), description="Attribution methods.")
    shapley_samples: int = Field(8, ge=1, description="Permutations for Shapley sampling.")
    ig_steps: int = Field(64, ge=2, description="Integration steps of integrated gradients.")
    counterfactual: bool = Field(True, description="Swap gendered words and names (CDA pairs) and attribute.")
    training_data: Optional[Path] = Field(None, description="Training data folder: rank its documents by influence "
                                                            "on each continuation (kronfluence); null: skip.")
    top_k: int = Field(3, ge=1, description="Most and least influential documents kept per prompt.")
    candidates: int = Field(100, ge=1, description="TF-IDF candidates scored per prompt.")
    fit_max_documents: Optional[int] = Field(500, ge=1, description="Documents the EK-FAC factors are fitted on.")
    max_length: int = Field(128, ge=4, description="Tokens of a training document scored.")
    cache_dir: Optional[Path] = Field(None, description="Factor cache; null: OUT/explain_cache.")


@register_audit
class Explain(Audit):
    name = "explain"
    Settings = ExplainSettings
    requires: ClassVar[dict[str, str]] = {"captum": "explain"}
    description = "Token attribution (captum), counterfactual swaps and influential training documents."

    def preflight(self) -> None:
        super().preflight()
        unknown = [m for m in self.settings.methods if m not in METHODS]
        if unknown:
            raise InputError(f"audit explain: unknown method {unknown[0]!r}; available: {', '.join(METHODS)}")
        if self.settings.training_data is not None:
            from fmaudit.explain import require

            require("kronfluence")
            if not Path(self.settings.training_data).is_dir():
                raise InputError(f"{self.settings.training_data}: no such folder (audit explain, setting training_data)")

    def probe_prompts(self) -> tuple[Optional[Path], list[tuple[str, str]]]:
        """``(file or None, [(item id, prompt)])``."""
        s = self.settings
        if s.prompts:
            return None, [(f"prompt:{i}", p) for i, p in enumerate(s.prompts[:s.max_prompts], 1)]
        if s.data is not None:
            return Path(s.data), [(f"{Path(s.data).name}:{line}", t) for line, t in read_texts(s.data, s.field)
                                  ][:s.max_prompts]
        path = builtin(BUILTIN)
        return path, [(f"{path.name}:{line}", " ".join(t.split()[:s.prompt_words]))
                      for line, t in read_texts(path)][:s.max_prompts]

    def run(self, mua, ctx: AuditContext) -> AuditResult:
        from fmaudit.explain.attribution import attribute
        from fmaudit.explain.counterfactual import counterfactual_attribution
        from fmaudit.explain.report import attribution_section, counterfactual_section
        from fmaudit.text.scrub import scrub

        s = self.settings
        path, prompts = self.probe_prompts()
        expls = [attribute(mua.model, mua.tokenizer, p, methods=s.methods, max_new_tokens=s.max_new_tokens,
                           shapley_samples=s.shapley_samples, ig_steps=s.ig_steps, seed=s.seed) for _, p in prompts]
        cfs = [counterfactual_attribution(mua.model, mua.tokenizer, e.prompt, e.target, seed=s.seed)
               for e in expls] if s.counterfactual else []
        _, _, plots, details = attribution_section(expls, ctx.reports_dir, scrub)
        if cfs:
            details.update(counterfactual_section(cfs, scrub)[1])
        influence = self._influence(mua, ctx, expls) if s.training_data is not None else None
        items = []
        for k, ((item_id, prompt), e, row) in enumerate(zip(prompts, expls, details["attribution"])):
            item = {"id": item_id, "prompt": item_text(prompt, s.item_text), "target": item_text(e.target, s.item_text),
                    "target_logprob": e.target_logprob, "target_tokens": len(e.target_ids)}
            for name, a in e.attributions.items():
                item[f"{name}_abs_delta"] = abs(a.convergence_delta)
                best = max(range(len(a.seq_attr)), key=lambda i: abs(a.seq_attr[i]))
                item[f"{name}_top_token"] = row["input_tokens"][best]
            if cfs:
                item["counterfactual_swaps"] = len(cfs[k].segments)
                item["counterfactual_changed"] = bool(cfs[k].segments)
                item["counterfactual_abs_logprob_change"] = abs(cfs[k].logprob_change)
            if influence is not None:
                q = influence.queries[k]
                item["most_influential"] = [[d.doc_id, d.score] for d in q.most]
                item["least_influential"] = [[d.doc_id, d.score] for d in q.least]
            items.append(item)
        if influence is not None:
            details["influence"] = influence.to_json()
        details["plot_files"] = plots
        extra = {"methods": s.methods, "shapley_samples": s.shapley_samples, "ig_steps": s.ig_steps,
                 "prompts_sha256": text_sha256("\n".join(p for _, p in prompts)),
                 "influence": None if influence is None else {
                     "training_data": str(s.training_data), "data_sha256": influence.data_sha256,
                     "prefilter": influence.prefilter, "candidates": s.candidates,
                     "coverage": influence.coverage, "factors_key": influence.factors_key}}
        protocol = Protocol(str(path) if path else None, sha256_file(path) if path else None, len(items),
                            decoding={"greedy": True, "max_new_tokens": s.max_new_tokens}, seed=s.seed, extra=extra)
        return self.rescore(items, protocol.to_json(), ctx, details)

    def _influence(self, mua, ctx: AuditContext, expls):
        from fmaudit.explain.influence import InfluenceAnalysis, InfluenceSettings
        from fmaudit.explain.ranking import load_training_documents, rank_documents

        s = self.settings
        docs = load_training_documents(s.training_data)
        settings = InfluenceSettings(max_length=s.max_length, fit_max_documents=s.fit_max_documents)
        analysis = InfluenceAnalysis(mua.model, mua.tokenizer, docs, settings=settings,
                                     cache_dir=s.cache_dir or ctx.out_dir / "explain_cache", model_hash=mua.sha256)
        return rank_documents(analysis, [(e.prompt, e.target) for e in expls], s.top_k, candidates=s.candidates)

    def rescore(self, items: list[dict], protocol: dict, ctx: AuditContext, details: Optional[dict] = None) -> AuditResult:
        seed = self.settings.seed
        metrics = {"target_logprob": from_items(items, "target_logprob", seed=seed)}
        for name in protocol.get("extra", {}).get("methods", self.settings.methods):
            metrics[f"{name}_abs_delta"] = from_items(items, f"{name}_abs_delta", seed=seed)
        if any(it.get("counterfactual_changed") for it in items):  # over the prompts a swap changed
            metrics["counterfactual_abs_logprob_change"] = from_items(
                items, "counterfactual_abs_logprob_change", where={"counterfactual_changed": True}, seed=seed)
        return AuditResult(metrics, self.checks(metrics), items, Protocol(**protocol), details or {})
