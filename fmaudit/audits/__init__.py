"""Checkpoint audits: read-only measurements of a causal-LM checkpoint, judged against the policy.

Audits are registered by name in :data:`AUDITS` and configured in the policy's ``audits:`` section
(``audits: {NAME: {settings}}``); other packages add theirs through the ``fmaudit.audits`` entry-point group.
The contract is in :mod:`fmaudit.audits.base`, the shared model under audit in :mod:`fmaudit.audits.model`,
statistics in :mod:`fmaudit.audits.stats` and the driver of ``fmaudit audit`` in :mod:`fmaudit.audits.runner`.
"""

from __future__ import annotations

from fmaudit.registry import Registry

AUDITS: Registry = Registry("audit", group="fmaudit.audits", builtins={
    "perplexity": "fmaudit.audits.perplexity",
    "bias.pairs": "fmaudit.audits.bias_pairs",
    "bias.counterfactual": "fmaudit.audits.bias_counterfactual",
    "bias.generation": "fmaudit.audits.bias_generation",
    "toxicity.generation": "fmaudit.audits.toxicity_generation",
    "privacy.canaries": "fmaudit.audits.privacy_canaries",
    "privacy.regurgitation": "fmaudit.audits.privacy_regurgitation",
    "refusal": "fmaudit.audits.refusal",
    "explain": "fmaudit.audits.explain",
})

register_audit = AUDITS.register
