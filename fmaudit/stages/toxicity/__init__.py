"""The ``toxicity`` data stage (its settings and report beside it)."""

from fmaudit.stages.toxicity.settings import ToxicitySettings
from fmaudit.stages.toxicity.stage import Toxicity, remove_spans, sentence_spans

__all__ = ["Toxicity", "ToxicitySettings", "remove_spans", "sentence_spans"]
