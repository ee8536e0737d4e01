"""Policy settings of the ``toxicity`` stage, and the decision vocabulary its report shares."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Optional

from pydantic import Field, model_validator

from fmaudit.scoring import ScorerSpec
from fmaudit.scoring.detoxify import DetoxifySettings
from fmaudit.settings import StageSettings

SENSITIVITY = tuple(round(0.1 * k, 1) for k in range(1, 10))
DECISIONS = ("drop", "trim", "flag", "hold")
Score = Annotated[float, Field(ge=0, le=1)]


class ToxicitySettings(StageSettings):
    scorer: ScorerSpec = Field(default_factory=DetoxifySettings,
                                   description="Which scorer runs: detoxify, profanity-check or cascade (see "
                                               "fmaudit.scoring).")
    thresholds: dict[str, Score] = Field(
        default_factory=lambda: {"toxicity": 0.5},
        description="Per-label thresholds: a score at or above one marks the text toxic. Labels: detoxify's "
                    "(toxicity, severe_toxicity, obscene, threat, insult, identity_attack, ...) or profanity-check's "
                    "(profanity).")
    granularity: Literal["document", "sentence"] = Field("document", description="Decide per document, or per "
                                                                                  "sentence (removing only toxic ones).")
    action: Literal["drop", "flag", "hold"] = Field("drop", description="What happens to toxic text.")
    sentence_screen: float = Field(0.5, ge=0, le=1, description="Sentence mode: split a document only when a label's "
                                                                "whole-text score reaches this fraction of its "
                                                                "threshold; 0: split every document.")
    identity_terms: dict[str, list[str]] = Field(default_factory=dict, description="Identity terms added to the "
                                                                                   "list, by group (new groups too).")
    identity_terms_file: Optional[Path] = Field(None, description="Replace the shipped identity-term list "
                                                                  "(fmaudit/data/identity_terms.yaml) with this file.")
    max_identity_removal_ratio: Optional[float] = Field(
        2.0, ge=1, description="Check, per identity group: removal rate of units (documents; sentences in sentence "
                               "mode) mentioning the group / that of units mentioning no group (the group's rate "
                               "shrunk towards the baseline by 10 pseudo-units) must stay at or below this. null: no "
                               "check.")
    min_identity_mentions: int = Field(20, ge=1, description="Groups mentioned by fewer units (documents; sentences in "
                                                                 "sentence mode) get no check.")
    identity_check_severity: Literal["error", "warning"] = Field("error", description="Severity of that check.")
    min_cascade_agreement: Optional[float] = Field(
        0.95, ge=0, le=1, description="Check (cascade): share of audited cleared texts that the full scorer also "
                                      "finds below every threshold.")

    min_precision: Optional[float] = Field(None, ge=0, le=1, description="Check, when ground truth is given: "
                                                                         "document-level precision at least this.")
    min_recall: Optional[float] = Field(None, ge=0, le=1, description="Check, when ground truth is given: "
                                                                      "document-level recall at least this.")

    @model_validator(mode="after")
    def _terms_file_exists(self) -> "ToxicitySettings":
        if self.identity_terms_file is not None and not self.identity_terms_file.is_file():
            raise ValueError(f"identity_terms_file {self.identity_terms_file} is not a file")
        if not self.thresholds:
            raise ValueError("thresholds is empty: name at least one label")
        return self
