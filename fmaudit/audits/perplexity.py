"""``perplexity``: how well the checkpoint predicts held-out text.

Each text is scored as one sequence (its tokens given the BOS prefix, truncated to the model's context);
perplexity is exp(total negative log-likelihood / total tokens scored), with a bootstrap interval over texts.
Items keep each text's log-likelihood and token count, so a run can be re-scored and two checkpoints
compared (paired bootstrap) without the model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import Field

from fmaudit.audits import register_audit
from fmaudit.audits.base import Audit, AuditContext, AuditResult, AuditSettings, Protocol, item_text
from fmaudit.audits.inputs import builtin, read_texts
from fmaudit.audits.stats import from_items, mde_mean
from fmaudit.corpus import sha256_file

BUILTIN = "heldout.txt"


class PerplexitySettings(AuditSettings):
    field: str = Field("text", description="The text field of a JSONL or CSV data file.")
    max_texts: int = Field(1000, ge=1, description="Texts scored at most (the first ones of the file).")


@register_audit
class Perplexity(Audit):
    name = "perplexity"
    Settings = PerplexitySettings
    description = "Perplexity on held-out text."

    def data_path(self) -> Path:
        return Path(self.settings.data) if self.settings.data else builtin(BUILTIN)

    def run(self, mua, ctx: AuditContext) -> AuditResult:
        path = self.data_path()
        texts = read_texts(path, self.settings.field)[: self.settings.max_texts]
        rows = mua.sequence_logprobs([t for _, t in texts], self.settings.batch_size)
        items = [{"id": f"{path.name}:{line}", "line": line, "text": item_text(text, self.settings.item_text),
                  "tokens": r["tokens"], "logprob": r["logprob"], "nll": -r["logprob"],
                  "nll_per_token": -r["logprob"] / r["tokens"] if r["tokens"] else None}
                 for (line, text), r in zip(texts, rows)]
        protocol = Protocol(str(path), sha256_file(path), len(items), seed=self.settings.seed,
                            extra={"scoring": "sum log p(tokens | BOS), truncated to the model's context"})
        return self.rescore(items, protocol.to_json(), ctx)

    def rescore(self, items: list[dict], protocol: dict, ctx: AuditContext) -> AuditResult:
        scored = [it for it in items if it["tokens"] > 0]
        seed = self.settings.seed
        metrics = {
            "perplexity": from_items(scored, "nll", weight_field="tokens", transform="exp", seed=seed),
            "nll_per_token": from_items(scored, "nll", weight_field="tokens", seed=seed),
        }
        per_token = [it["nll_per_token"] for it in scored]
        sd = float(np.std(per_token, ddof=1)) if len(per_token) > 1 else float("nan")
        details = {"tokens_scored": sum(it["tokens"] for it in scored),
                   "mde_nll_per_token": mde_mean(sd, len(scored))}
        return AuditResult(metrics, self.checks(metrics), items, Protocol(**protocol), details)
