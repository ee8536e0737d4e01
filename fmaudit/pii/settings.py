"""Policy settings of the ``pii`` stage (validated by pydantic; every field documented and bounded)."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from fmaudit.stages.base import StageSettings

# Types worth removing from pre-training text: they point at one person or one account.
DEFAULT_ENTITIES = ["PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "IP_ADDRESS", "US_SSN",
                    "US_BANK_NUMBER", "US_PASSPORT", "CRYPTO", "UK_NHS"]
# Presidio types left out by default because they are common, rarely identify anyone on their own, and
# their removal damages text a model should learn from.
NOISY_ENTITIES = {
    "DATE_TIME": "dates are everywhere (history, news, schedules) and rarely identify a person alone",
    "LOCATION": "cities and countries are world knowledge; only full street addresses are personal",
    "NRP": "nationality, religious and political group terms are identity terms bias audits need intact",
    "URL": "web text is full of links to public pages; e-mail addresses are caught separately",
    "ORGANIZATION": "companies and institutions are not personal data",
}
OPERATORS = ("replace", "mask", "hash", "encrypt", "pseudonymize", "keep")
KEYED_OPERATORS = ("hash", "encrypt")


class OperatorSpec(BaseModel):
    """How the text of one entity type is rewritten. A plain string is shorthand for ``{operator: NAME}``."""

    model_config = ConfigDict(extra="forbid")
    operator: Literal[OPERATORS] = Field(..., description=(
        "replace: a typed tag such as <EMAIL_ADDRESS>; mask: every character (but keep_last) becomes "
        "masking_char; hash: <TYPE:salted hash>; encrypt: AES (reversible with `fmaudit pii decrypt` and the "
        "key); pseudonymize: a realistic Faker surrogate, consistent within a document (and across the corpus "
        "when a key is set); keep: leave the text (still counted and in the ledger)."))
    masking_char: str = Field("*", min_length=1, max_length=1, description="mask: the character written instead.")
    keep_last: int = Field(0, ge=0, le=8, description="mask: leave this many trailing characters visible.")

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


class PiiSettings(StageSettings):
    entities: list[str] = Field(list(DEFAULT_ENTITIES), min_length=1, description=(
        "Entity types to find (presidio names plus those of custom recognizers). Left out by default: "
        + "; ".join(f"{k}: {v}" for k, v in NOISY_ENTITIES.items()) + "."))
    score_threshold: float = Field(0.4, ge=0, le=1, description="Findings scoring below this are ignored.")
    language: str = Field("en", min_length=2, max_length=8, description="Language code given to presidio.")
    spacy_model: str = Field("en_core_web_sm", min_length=1, description=(
        "Installed spaCy model (package name or folder); never downloaded."))
    allow_list: list[str] = Field(default_factory=list, description="Exact strings never treated as PII.")
    person_titles: bool = Field(True, description=(
        "Widen a PERSON finding over an adjacent title or suffix (Dr., Mrs., Prof., Jr., MD, PhD ...), so the "
        "rewritten name does not keep them."))
    recognizers: list[RecognizerSpec] = Field(default_factory=list, description="Custom recognizers.")
    operators: dict[str, OperatorSpec] = Field(
        default_factory=lambda: {"DEFAULT": OperatorSpec(operator="replace")},
        description="Entity type -> operator; DEFAULT applies to types not listed (replace if absent).")
    ledger: Literal["auto", "on", "off"] = Field("auto", description=(
        "Salted-hash ledger of findings (side output pii_ledger/). auto: written when a key is available; "
        "on: a key is required; off: none."))
    key_env: str = Field("FMAUDIT_PII_KEY", min_length=1, description=(
        "Environment variable holding the secret key (salt of hashes and ledger, AES key, pseudonym seed)."))
    key_file: Optional[str] = Field(None, description="File holding the key, used when the variable is unset.")
    demo_key: bool = Field(False, description=(
        "Use fmaudit's public demo key when no other key is set. Only for synthetic data: anyone can reverse it."))
    max_density: Optional[float] = Field(None, ge=0, le=1, description=(
        "Drop a document (reason pii_density) when more than this fraction of its characters is PII. null: never."))
    chunk_chars: int = Field(100_000, ge=1_000, le=1_000_000, description=(
        "Texts longer than this are analyzed in overlapping chunks (spaCy's limit is 1,000,000)."))
    chunk_overlap: int = Field(500, ge=100, le=10_000, description=(
        "Characters shared by neighbouring chunks; longer than any entity and than the NER model's context."))
    ner_focus: bool = Field(True, description=(
        "Run spaCy NER only around capitalized words that are not ordinary sentence-initial words (names are "
        "proper nouns), when the NER types asked for are among PERSON, LOCATION, ORGANIZATION, NRP; false: NER "
        "over all text (slower; the benchmark reports how often the findings differ)."))
    fast_gemm: bool = Field(True, description=(
        "Let spaCy's NER and tagger multiply matrices with numpy's BLAS instead of thinc's BLIS (faster on "
        "most CPUs; results equal up to float rounding)."))
    nlp_batch_size: int = Field(64, ge=1, le=4096, description="Texts per spaCy nlp.pipe batch.")
    min_recall: Optional[float] = Field(None, ge=0, le=1, description=(
        "Check (only with a ground-truth file): overall recall of injected PII strings at least this."))

    @model_validator(mode="after")
    def _consistent(self):
        if self.chunk_overlap * 2 >= self.chunk_chars:
            raise ValueError("chunk_overlap must be less than half of chunk_chars")
        custom = {r.entity_type for r in self.recognizers}
        for name in self.operators:
            if name != "DEFAULT" and name not in self.entities and name not in custom:
                raise ValueError(f"operators names {name!r}, which is not in entities")
        return self

    def operator_for(self, entity_type: str) -> OperatorSpec:
        return self.operators.get(entity_type) or self.operators.get("DEFAULT") or OperatorSpec(operator="replace")

    def needs_key(self) -> bool:
        """True when an operator cannot work without the key."""
        return any(self.operator_for(e).operator in KEYED_OPERATORS for e in self.all_entities())

    def all_entities(self) -> list[str]:
        """The entity types asked for, plus those of custom recognizers (which are always active)."""
        return list(dict.fromkeys(self.entities + [r.entity_type for r in self.recognizers]))
