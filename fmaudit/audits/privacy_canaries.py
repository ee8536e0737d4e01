"""``privacy.canaries``: secret-sharer exposure of the canaries training planted (``train.canaries``).

The canary record (``RUN/tokens/canaries.json``) is found from the checkpoint's run folder, or named by
the ``record`` setting. Every candidate secret of the canaries' format is scored when the candidate space
has at most ``candidates`` secrets, else a uniform sample of that many; the exposure of each canary is
computed by rank and by the skew-normal fit (:mod:`fmaudit.audits.exposure`) and averaged per repetition
count. A model that memorised its training data shows exposure growing with the repetition count.

Metrics: ``exposure_rank_<R>`` and ``exposure_skewnorm_<R>`` per repetition count ``R``, and
``exposure_rank_max`` / ``exposure_skewnorm_max`` (the largest over counts: the figure a policy gates on,
whatever counts a run planted).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal, Optional

import numpy as np
from pydantic import Field

from fmaudit.audits import register_audit
from fmaudit.audits.base import Audit, AuditContext, AuditResult, AuditSettings, Protocol, require_unchanged
from fmaudit.audits.exposure import SkewNormalFit, exposure_by_rank, group_interval, score_candidates
from fmaudit.audits.stats import Metric
from fmaudit.corpus import sha256_file
from fmaudit.core.canaries import find_record, read_record, secret_sha256
from fmaudit.errors import InputError


class CanaryAuditSettings(AuditSettings):
    """Exposure of planted canaries."""

    record: Optional[Path] = Field(None, description="Canary record (canaries.json); null: the one of the "
                                                     "checkpoint's training run (RUN/tokens/canaries.json).")
    candidates: int = Field(10000, ge=100, le=10_000_000, description="Candidate secrets scored: all of them "
                                                                      "when the space is at most this large, "
                                                                      "else a uniform sample of this many.")
    refits: int = Field(50, ge=0, le=2000, description="Bootstrap refits of the skew-normal fit (its interval).")
    batch_size: int = Field(128, ge=1, description="Sequences per forward pass (candidates are short).")
    missing: Literal["skip", "error"] = Field(
        "skip", description="When the checkpoint's run planted no canaries: skip the audit (no metrics) or "
                            "stop with an input error.")


@register_audit
class CanaryExposure(Audit):
    name = "privacy.canaries"
    Settings = CanaryAuditSettings
    description = "Secret-sharer exposure of canaries planted in training, per repetition count."

    def preflight(self) -> None:
        super().preflight()
        if self.settings.record is not None and not Path(self.settings.record).is_file():
            raise InputError(f"{self.settings.record}: no such file (audit {self.name}, setting record)")

    def _record(self, checkpoint) -> Optional[Path]:
        if self.settings.record is not None:
            return Path(self.settings.record)
        found = find_record(checkpoint) if checkpoint is not None else None
        if found is None and self.settings.missing == "error":
            raise InputError(f"{checkpoint}: its training run planted no canaries (no tokens/canaries.json; "
                             f"train with train.canaries or set audits.{self.name}.record)")
        return found

    def run(self, mua, ctx: AuditContext) -> AuditResult:
        s = self.settings
        path = self._record(ctx.checkpoint or mua.path)
        if path is None:
            protocol = Protocol(None, None, 0, seed=s.seed, extra={"skipped": "the training run planted no canaries"})
            return AuditResult({}, [], [], protocol, {"skipped": True})
        canary_settings, canaries = read_record(path)

        def logprob(texts):
            return np.array([r["logprob"] for r in mua.sequence_logprobs(list(texts), batch_size=s.batch_size)])

        candidates = score_candidates(canary_settings, logprob, s.candidates, s.seed)
        fit = SkewNormalFit(candidates.logppl, s.refits, s.seed)
        canary_logppl = -logprob([c["text"] for c in canaries]) / math.log(2)
        items = []
        for c, x in zip(canaries, canary_logppl):
            by_rank, by_fit = exposure_by_rank(float(x), candidates), fit.exposure(float(x))
            items.append({"id": c["id"], "repetitions": c["repetitions"],
                          "secret_sha256": secret_sha256(c["secret"]),
                          "log_perplexity_bits": float(x), "rank": by_rank["rank"],
                          "exposure_rank": by_rank["exposure"], "exposure_rank_low": by_rank["low"],
                          "exposure_rank_high": by_rank["high"], "exposure_skewnorm": by_fit["exposure"],
                          "exposure_skewnorm_low": by_fit["low"], "exposure_skewnorm_high": by_fit["high"]})
        protocol = Protocol(str(path), sha256_file(path), len(items), seed=s.seed, extra={
            "space_size": candidates.space_size, "log2_space": math.log2(candidates.space_size),
            "candidates_scored": len(candidates.logppl), "enumerated": candidates.enumerated,
            "format": canary_settings.format, "repetitions": sorted({c["repetitions"] for c in canaries}),
            "skewnorm": fit.describe(), "checkpoint": ctx.checkpoint, "measured_with": self._measured_with()})
        return self._result(items, protocol.to_json(), {"candidate_logppl_mean": float(candidates.logppl.mean())})

    def _measured_with(self) -> dict:
        """The settings the saved exposures depend on (all but the checks)."""
        s = self.settings
        return {"candidates": s.candidates, "refits": s.refits, "seed": s.seed,
                "record": None if s.record is None else str(s.record)}

    def rescore(self, items: list[dict], protocol: dict, ctx: AuditContext) -> AuditResult:
        """Recompute the per-repetition figures and checks from the saved per-canary exposures; no model.
        Exposure has no scorer to swap (the model's likelihood is the measurement), and a new candidate
        sample or skew-normal fit needs the candidates' log-likelihoods, which only the model gives."""
        if protocol["extra"].get("skipped"):
            return AuditResult({}, [], [], Protocol(**protocol), {"skipped": True})
        require_unchanged(self.name, protocol["extra"], {"measured_with": self._measured_with()},
                          "the saved exposures were measured against the saved candidates and fit")
        return self._result(items, protocol, {})

    def _result(self, items: list[dict], protocol: dict, details: dict) -> AuditResult:
        metrics = self._metrics(items, protocol["extra"]["enumerated"])
        return AuditResult(metrics, self.checks(metrics), items, Protocol(**protocol), details)

    def _metrics(self, items: list[dict], enumerated: bool) -> dict[str, Metric]:
        metrics: dict[str, Metric] = {}
        methods = {"rank": "exact_rank" if enumerated else "sampled_rank_wilson", "skewnorm": "skewnorm_bootstrap"}
        for how in ("rank", "skewnorm"):
            best: Optional[Metric] = None
            for reps in sorted({it["repetitions"] for it in items}):
                group = [it for it in items if it["repetitions"] == reps]
                value, low, high = group_interval([g[f"exposure_{how}"] for g in group],
                                                  [g[f"exposure_{how}_low"] for g in group],
                                                  [g[f"exposure_{how}_high"] for g in group], self.settings.seed)
                m = Metric(value, low, high, len(group), methods[how], f"exposure_{how}", {"repetitions": reps})
                metrics[f"exposure_{how}_{reps}"] = m
                if best is None or m.value > best.value:
                    best = m
            if best is not None:
                metrics[f"exposure_{how}_max"] = best
        return metrics
