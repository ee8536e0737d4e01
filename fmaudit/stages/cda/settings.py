"""Policy settings of the ``cda`` stage: modes, the built-in gender axis and further axes from pair files."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from fmaudit.cda.swapper import GENDER
from fmaudit.cda.wordlists import PairFileError, load_pairs
from fmaudit.settings import StageSettings

def _check_pair_file(path: Optional[str], case_sensitive: bool = False) -> Optional[str]:
    if path is not None:
        try:
            load_pairs(path, case_sensitive)
        except PairFileError as e:
            raise ValueError(str(e)) from None
    return path


class AxisSettings(BaseModel):
    """A further swap axis (religion, nationality, ...) read from a pair file."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., pattern=r"^[a-z][a-z0-9_]*$", max_length=40,
                      description="Axis name used in reports and counters, e.g. religion.")
    path: str = Field(..., min_length=1,
                      description="Pair file: 'term_a<TAB>term_b[<TAB>kind[<TAB>direction]]' per line, '#' "
                                  "comments; phrases allowed; a path relative to the working directory. Terms are "
                                  "swapped as plain terms (kind is not used), both ways unless direction says a>b "
                                  "or b>a, case kept.")
    sides: tuple[str, str] = Field(("a", "b"), description="Names of the file's two columns, for the balance report.")

    @field_validator("path")
    @classmethod
    def _readable(cls, v: str) -> str:
        return _check_pair_file(v)

    @field_validator("name")
    @classmethod
    def _not_gender(cls, v: str) -> str:
        if v == GENDER:
            raise ValueError("'gender' is the built-in axis (settings gender, gender_pairs, names)")
        return v


class CdaSettings(StageSettings):
    mode: Literal["augment", "substitute"] = Field(
        "augment", description="augment: keep each document (meta.cda.twin names its twin) and add its "
                               "counterfactual (id '<id>#cda', meta.counterfactual_of); substitute: replace eligible "
                               "documents by their counterfactual with probability `probability`. Documents an "
                               "earlier run marked (meta.cda or meta.counterfactual_of) are counted, not redone.")
    probability: float = Field(0.5, ge=0, le=1,
                               description="substitute mode: chance that an eligible document is swapped.")
    seed: int = Field(0, ge=0, description="Seed of the substitute draw; each document's draw depends only on the "
                                           "seed and its id, so runs are reproducible across shards and workers.")
    gender: bool = Field(True, description="Swap gendered words (pronouns, titles, kinship, gendered nouns).")
    gender_pairs: Optional[str] = Field(None, description="Pair file replacing the shipped gender list "
                                                          "(null: fmaudit/data/gender_pairs.tsv).")
    names: bool = Field(True, description="Swap first names by gender (proper nouns only; pairs are one-to-one, so "
                                          "names stay consistent within and across documents).")
    names_file: Optional[str] = Field(None, description="Name-pair file replacing the shipped list "
                                                        "(null: fmaudit/data/gendered_names.tsv).")
    axes: list[AxisSettings] = Field(default_factory=list, max_length=20,
                                     description="Further axes from pair files, swapped in the same counterfactual.")
    spacy_model: str = Field("en_core_web_sm", min_length=1, description="spaCy pipeline for tags and dependencies.")
    parser: bool = Field(True, description="Use spaCy's dependency parser with the tagger to resolve her/his "
                                           "(false: tags only, about twice as fast).")
    nlp_batch_size: int = Field(64, ge=1, le=4096, description="Sentences per spaCy nlp.pipe batch.")
    min_terms: int = Field(1, ge=1, le=1000, description="A document is eligible when it holds at least this many "
                                                         "swappable terms.")
    max_imbalance_after: Optional[float] = Field(
        None, ge=1, description="Check: fail when, on any axis, max(a/b, b/a) of the term counts in the output "
                                "corpus exceeds this. null: no check.")

    @field_validator("gender_pairs")
    @classmethod
    def _gender_pairs_readable(cls, v: Optional[str]) -> Optional[str]:
        return _check_pair_file(v)

    @field_validator("names_file")
    @classmethod
    def _names_readable(cls, v: Optional[str]) -> Optional[str]:
        return _check_pair_file(v, True)

    @model_validator(mode="after")
    def _something_to_swap(self) -> "CdaSettings":
        if not (self.gender or self.names or self.axes):
            raise ValueError("nothing to swap: enable gender or names, or list axes")
        if len({a.name for a in self.axes}) != len(self.axes):
            raise ValueError("axis names must be unique")
        return self
