"""Policy settings of the ``pii`` stage (validated by pydantic; every field documented and bounded)."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field, model_validator

from fmaudit.pii.specs import KEYED_OPERATORS, OperatorSpec, RecognizerSpec
from fmaudit.settings import StageSettings

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
# Faker locales whose name lists back the name recognizer (Latin-script; a mix of European and Latin-American).
NAME_LOCALES = ["en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "pt_PT", "pt_BR", "nl_NL", "sv_SE", "da_DK",
                "no_NO", "fi_FI", "pl_PL", "cs_CZ", "sk_SK", "hu_HU", "ro_RO", "hr_HR", "sl_SI", "tr_TR", "es_MX",
                "es_CO", "es_AR", "et_EE", "lv_LV", "lt_LT", "id_ID", "fil_PH", "bs_BA"]
# Regions whose national phone formats libphonenumber tries (numbers with a + prefix match in any region).
PHONE_REGIONS = ["US", "GB", "DE", "FR", "IL", "IN", "CA", "BR", "ES", "IT", "PT", "NL", "BE", "CH", "AT", "SE", "NO",
                 "DK", "FI", "PL", "CZ", "SK", "HU", "RO", "HR", "SI", "GR", "TR", "IE", "MX", "AR", "CO", "CL",
                 "PE", "UY", "AU", "NZ", "ZA", "PH", "ID"]


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
    name_locales: list[str] = Field(list(NAME_LOCALES), description=(
        "PERSON also from the first- and last-name lists of these Faker locales: a run of capitalized words "
        "with a known first and last name, or a known name after a label or phrase (my name is, Name:, Dear, "
        "Regards,). []: spaCy NER only."))
    label_recognizers: list[str] = Field(["PERSON", "PHONE_NUMBER", "ADDRESS", "IBAN_CODE"], description=(
        "Entity types also found as the value after a label (Name:, Phone:/Tel/Mobile, Address:, IBAN), up to "
        "the next label or the end of the line; only types the stage looks for. []: none."))
    phone_regions: list[str] = Field(list(PHONE_REGIONS), min_length=1, description=(
        "Regions (ISO 3166 codes) whose national phone formats libphonenumber tries (presidio's default: eight)."))
    street_addresses: bool = Field(True, description=(
        "ADDRESS also from street patterns of European and Latin-American layouts: a street with its type word "
        "(utca, tér, katu, straße, rue, calle, via ...) and house number, then unit, city, region, postcode."))
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
    meta_fields: Optional[list[str]] = Field(None, description=(
        "Which meta fields are scanned and rewritten like the text (extra top-level fields of a record are in "
        "meta): null, every string in meta at any depth; a list, those top-level keys; [], none."))
    scan_ids: bool = Field(True, description=(
        "Scan document ids too (with the pattern and list recognizers; spaCy's NER guesses on identifiers are "
        "ignored). The ledger holds an id only if it was scanned and found clean; otherwise a keyed hash of it "
        "(`hashed:...`). Ids are never rewritten (they are the document's identity)."))

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
        return list(dict.fromkeys(self.entities + [r.entity_type for r in self.recognizers]
                                  + (["ADDRESS"] if self.street_addresses else [])))
