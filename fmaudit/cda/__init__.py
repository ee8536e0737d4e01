"""Counterfactual data augmentation: word lists, grammar rules and the swapper behind the ``cda`` stage."""

from fmaudit.cda.swapper import GENDER, Axis, Counterfactual, Swap, Swapper
from fmaudit.cda.wordlists import GENDER_PAIRS, GENDERED_NAMES, PairFileError, PairList, load_pairs

__all__ = ["GENDER", "Axis", "Counterfactual", "Swap", "Swapper", "GENDER_PAIRS", "GENDERED_NAMES",
           "PairFileError", "PairList", "load_pairs"]
