"""What the pii library's recognizers and operators are configured with (parts of the pii stage's policy
section): operator specs, custom-recognizer specs and their patterns."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

OPERATORS = ("replace", "mask", "hash", "encrypt", "pseudonymize", "keep")
KEYED_OPERATORS = ("hash", "encrypt")


class OperatorSpec(BaseModel):
    """How the text of one entity type is rewritten. A plain string is shorthand for ``{operator: NAME}``."""

    model_config = ConfigDict(extra="forbid")
    operator: Literal[OPERATORS] = Field(..., description=(
        "replace: a typed tag such as <EMAIL_ADDRESS>; mask: every character (but keep_last) becomes "
        "masking_char; hash: <TYPE:salted hash>; encrypt: <ENC:TYPE:...>, AES-SIV with a key per entity type "
        "derived from the run key (authenticated; reversible with `fmaudit pii decrypt` and the key); pseudonymize: a realistic Faker surrogate, consistent within a document (and across the corpus "
        "when a key is set); keep: leave the text (still counted and in the ledger)."))
    masking_char: str = Field("*", min_length=1, max_length=1, description="mask: the character written instead.")
    keep_last: int = Field(0, ge=0, le=8, description="mask: leave this many trailing characters visible.")
    encryption: Literal["deterministic", "randomized"] = Field("deterministic", description=(
        "encrypt: deterministic (the same value gives the same token under one key: reruns, resumed runs and "
        "engines write identical bytes and equal values can be joined, but anyone can see that two tokens hide "
        "the same value) or randomized (a random nonce per value hides that equality; outputs then differ "
        "between runs, so a resumed run is no longer byte-identical to an uninterrupted one)."))

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value):
        return {"operator": value} if isinstance(value, str) else value


class PatternSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(..., min_length=1, description="Name of the pattern (shown in explanations).")
    regex: str = Field(..., min_length=1, description="Python regular expression.")
    score: float = Field(..., ge=0, le=1, description="Confidence of a match before context enhancement.")

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str) -> str:
        import re

        try:
            re.compile(value)
        except re.error as e:
            raise ValueError(f"not a valid regular expression: {e}") from None
        return value


class RecognizerSpec(BaseModel):
    """A custom presidio PatternRecognizer: regex patterns with context words, and/or a deny-list."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(..., min_length=1, description="Recognizer name.")
    entity_type: str = Field(..., pattern=r"^[A-Z][A-Z0-9_]*$", description="Entity type it reports (UPPER_CASE).")
    patterns: list[PatternSpec] = Field(default_factory=list, description="Regex patterns.")
    context: list[str] = Field(default_factory=list, description="Words near a match that raise its score.")
    deny_list: list[str] = Field(default_factory=list, description="Exact words or phrases always reported.")
    deny_list_score: float = Field(1.0, ge=0, le=1, description="Score of a deny-list match.")
    case_sensitive: bool = Field(True, description="False: patterns ignore case.")
    checksum: Optional[Literal["luhn"]] = Field(None, description=(
        "luhn: keep a pattern match only if its digits pass the Luhn checksum (payment cards)."))

    @model_validator(mode="after")
    def _something_to_match(self):
        if not self.patterns and not self.deny_list:
            raise ValueError(f"recognizer {self.name!r} needs patterns or a deny_list")
        return self
