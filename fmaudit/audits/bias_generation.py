"""``bias.generation``: continuations of prompts about demographic groups, scored for toxicity and
sentiment per group; the largest gap between the groups of an axis, with a bootstrap interval.

Prompt files have ``prompt`` and ``group`` (and optionally ``axis``, e.g. religion) columns; the built-in set
(``fmaudit/audits/data/bias_generation_prompts.csv``, written for the project) crosses five templates with
22 groups of six axes. Each prompt gets ``samples`` seeded continuations; a prompt's figure is the mean
over them.

Metrics: ``toxicity.<group>`` and ``sentiment.<group>`` (means, bootstrap CIs), and per axis
``toxicity_gap.<axis>`` / ``sentiment_gap.<axis>``: the highest group mean minus the lowest, its interval
from resampling prompts within each group; ``toxicity_gap`` / ``sentiment_gap`` are the largest over axes.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
from pydantic import Field

from fmaudit.audits import register_audit
from fmaudit.audits.base import (Audit, AuditContext, AuditResult, AuditSettings, Protocol, item_text,
                                 text_sha256)
from fmaudit.audits.generation import (label_column, prompts_as_generated, rescored_scores, sample_continuations,
                                      score_column, scorer_protocol)
from fmaudit.audits.model import DecodingSettings
from fmaudit.audits.prompts import builtin, read_prompts
from fmaudit.audits.stats import BOOTSTRAP_ROUNDS, Metric, mean
from fmaudit.corpus import sha256_file
from fmaudit.errors import UsageError
from fmaudit.scoring import ScorerSpec, make_scorer

BUILTIN = "bias_generation_prompts.csv"
MEASURES = ("toxicity", "sentiment")


class BiasGenerationSettings(AuditSettings):
    """Toxicity and sentiment of continuations per demographic group."""

    samples: int = Field(5, ge=1, le=1000, description="Continuations per prompt.")
    decoding: DecodingSettings = Field(
        default_factory=lambda: DecodingSettings(sample=True, max_new_tokens=20, top_p=0.9),
        description="Decoding of the continuations.")
    toxicity_scorer: ScorerSpec = Field(default_factory=lambda: {"name": "profanity-check"},
                                        description="Scorer of toxicity.")
    toxicity_label: Optional[str] = Field(None, description="Toxicity scorer label; null: its first.")
    sentiment_scorer: ScorerSpec = Field(default_factory=lambda: {"name": "vader"},
                                         description="Scorer of sentiment (score in [0, 1]; 0.5 neutral).")
    sentiment_label: Optional[str] = Field(None, description="Sentiment scorer label; null: its first.")


def gap(groups: dict[str, np.ndarray]) -> tuple[float, str, str]:
    """Highest group mean minus lowest, and which groups they are."""
    means = {g: float(v.mean()) for g, v in groups.items()}
    hi, lo = max(means, key=means.get), min(means, key=means.get)
    return means[hi] - means[lo], hi, lo


def gap_metric(groups: dict[str, np.ndarray], seed: int, rounds: int = BOOTSTRAP_ROUNDS) -> tuple[Metric, dict]:
    """The largest gap between group means, with a percentile bootstrap over prompts within each group."""
    value, hi, lo = gap(groups)
    rng = np.random.default_rng(seed)
    reps = np.empty(rounds)
    names = sorted(groups)
    for r in range(rounds):
        means = [groups[g][rng.integers(0, len(groups[g]), len(groups[g]))].mean() for g in names]
        reps[r] = max(means) - min(means)
    n = sum(len(v) for v in groups.values())
    m = Metric(value, float(np.quantile(reps, 0.025)), float(np.quantile(reps, 0.975)), n, "bootstrap_within_groups")
    return m, {"highest": hi, "lowest": lo}


@register_audit
class BiasGeneration(Audit):
    name = "bias.generation"
    Settings = BiasGenerationSettings
    description = "Toxicity and sentiment of continuations per demographic group; largest gap between groups."

    def preflight(self) -> None:
        """Both scorers (package, checkpoint, label) and the prompt file are checked here, before any model loads:
        a bad row exits 2 naming file and line."""
        super().preflight()
        s = self.settings
        self.preflight_scorer(s.toxicity_scorer, s.toxicity_label, "toxicity_scorer")
        self.preflight_scorer(s.sentiment_scorer, s.sentiment_label, "sentiment_scorer")
        path = s.data or builtin(BUILTIN)
        self.prompts = (path, read_prompts(path, required=("group",)))

    def scorers(self) -> dict[str, tuple]:
        """``{measure: (scorer, label column)}`` as the policy names them."""
        s = self.settings
        out = {}
        for measure, spec, label in (("toxicity", s.toxicity_scorer, s.toxicity_label),
                                     ("sentiment", s.sentiment_scorer, s.sentiment_label)):
            scorer = make_scorer(spec)
            out[measure] = (scorer, label_column(scorer, label, self.name))
        return out

    def run(self, mua, ctx: AuditContext) -> AuditResult:
        s = self.settings
        if not hasattr(self, "prompts"):
            self.preflight()
        path, rows = self.prompts
        conts = sample_continuations(mua, [r["prompt"] for r in rows], s.samples, s.decoding, s.seed, s.batch_size)
        flat = [c for cs in conts for c in cs]
        scorers = self.scorers()
        scores = {m: np.round(score_column(sc, flat, col), 6).reshape(len(rows), s.samples)
                  for m, (sc, col) in scorers.items()}
        how = s.item_text
        items = [self._item({"id": text_sha256(r["prompt"])[:16], "line": r["line"], "prompt": item_text(r["prompt"], how),
                             "group": str(r["group"]), "axis": str(r.get("axis") or "all"),
                             "continuations": [item_text(c, how) for c in conts[i]]},
                            {m: scores[m][i] for m in MEASURES})
                 for i, r in enumerate(rows)]
        protocol = Protocol(str(path), sha256_file(path), len(items), samples_per_item=s.samples,
                            decoding=s.decoding.model_dump(), seed=s.seed,
                            extra={"groups": sorted({i["group"] for i in items}),
                                   "axes": sorted({i["axis"] for i in items}), "item_text": how})
        return self._result(items, protocol.to_json(), scorers)

    def rescore(self, items: list[dict], protocol: dict, ctx: AuditContext) -> AuditResult:
        """Recompute from saved continuations: their saved scores for a measure whose scorer is unchanged, the
        policy's scorer's scores of the anonymized continuations for one whose scorer changed; never regenerates."""
        s = self.settings
        path, rows = prompts_as_generated(self, protocol, s.samples)
        if any(f"{m}_scores" not in it for it in items for m in MEASURES):
            raise UsageError(f"audit {self.name}: these items keep no per-continuation scores (written by an older "
                             f"fmaudit); run the audit again")
        scorers = self.scorers()
        texts = [it.get("continuations") or [None] * s.samples for it in items]
        scores, fresh = {}, {}
        for measure, (scorer, col) in scorers.items():
            saved = (protocol.get("scorer") or {}).get(measure) or {}
            scores[measure], fresh[measure] = rescored_scores(
                scorer, col, saved, saved.get("label"), [it.get(f"{measure}_scores") or [] for it in items], texts, self.name)
        items = [self._item({k: it[k] for k in ("id", "line", "prompt", "group", "axis", "continuations") if k in it},
                            {m: scores[m][i] for m in MEASURES}) for i, it in enumerate(items)]
        protocol = {**protocol, "extra": {**protocol["extra"], "rescored": {"scored_anew": fresh}}}
        return self._result(items, protocol, scorers)

    def _item(self, base: dict, scores: dict[str, np.ndarray]) -> dict:
        """An item from its inputs and continuations (``base``) and each measure's scores of them."""
        out = dict(base)
        for measure in MEASURES:
            out[measure] = float(scores[measure].mean())
            out[f"{measure}_scores"] = [float(x) for x in scores[measure]]
        out["toxicity_max"] = float(scores["toxicity"].max())
        out["sample"] = (base.get("continuations") or [None])[0]
        return out

    def _result(self, items: list[dict], protocol: dict, scorers: dict[str, tuple]) -> AuditResult:
        metrics, details = self.metrics(items)
        protocol = {**protocol, "scorer": {m: {**scorer_protocol(sc), "label": sc.labels[col]}
                                           for m, (sc, col) in scorers.items()}}
        return AuditResult(metrics, self.checks(metrics), items, Protocol(**protocol), details)

    def metrics(self, items: list[dict]) -> tuple[dict[str, Metric], dict]:
        s = self.settings
        out: dict[str, Metric] = {}
        details: dict = {"gaps": {}}
        for group in sorted({i["group"] for i in items}):
            for measure in MEASURES:
                out[f"{measure}.{group}"] = mean([i[measure] for i in items if i["group"] == group],
                                                 item_field=measure, where={"group": group}, seed=s.seed)
        for measure in MEASURES:
            best: Optional[Metric] = None
            for axis in sorted({i["axis"] for i in items}):
                groups = {}
                for i in items:
                    if i["axis"] == axis:
                        groups.setdefault(i["group"], []).append(i[measure])
                if len(groups) < 2:
                    continue
                m, which = gap_metric({g: np.asarray(v) for g, v in groups.items()}, s.seed)
                out[f"{measure}_gap.{axis}"] = m
                details["gaps"][f"{measure}.{axis}"] = which
                if best is None or m.value > best.value:
                    best = m
            if best is not None:
                out[f"{measure}_gap"] = best
        return out, details
