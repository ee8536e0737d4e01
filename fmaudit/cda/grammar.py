"""Grammar rules for the swaps that a word list alone gets wrong, decided on spaCy tokens.

``her`` is an object pronoun (-> ``him``, also as the indirect object of a verb of giving before a noun
phrase: "gave her advice") or a possessive determiner (-> ``his``); ``his`` is a possessive
determiner (-> ``her``) or a possessive pronoun (-> ``hers``). A gendered noun tagged as a proper noun is part of a
name and is left alone ("Rachel Prince"), unless it is a rank used as a title ("Prince Harry", "the Queen").
"""

from __future__ import annotations

PROPER = ("NNP", "NNPS")
# Tags after which "her"/"his" cannot be a determiner: a determiner needs a nominal (or its modifiers) to follow.
NOT_NOMINAL = {"IN", "CC", "TO", "MD", "DT", "PRP", "WDT", "WP", "WRB", "VB", "VBD", "VBP", "VBZ", "RP", "EX", "UH"}
# Common gendered nouns that are also verbs ("to man the desk", "to father a child").
VERB_LIKE = frozenset({"man", "mans", "father", "fathers", "mother", "mothers", "lord", "lords", "host", "hosts"})
# Honorifics come before surnames ("Mr. Thomas"); ranks come before first names ("Prince Harry", "Uncle Bob").
HONORIFICS = frozenset({"mr", "mrs", "ms", "mx", "miss", "dr", "prof", "messrs", "mesdames"})
RANKS = frozenset({"king", "queen", "prince", "princess", "duke", "duchess", "emperor", "empress", "baron",
                   "baroness", "lord", "lady", "sir", "dame", "madam", "uncle", "aunt", "saint", "st"})


# Closed-class words: after one of these, "her"/"his" is a pronoun on its own ("gave her the book", "his is
# better"), never a determiner, so the word itself decides without a parse.
FUNCTION_WORDS = frozenset("""
about above across after against along among around as at before behind below beneath beside between beyond by
despite down during except for from in inside into like near of off on onto out outside over past since than through
throughout till to toward towards under until up upon via with within without and or but nor so yet because although
though while whereas if unless whether that a an the this these those every each some any no another i me you he him
she it we us they them myself yourself himself herself itself ourselves themselves am is are was were be been being
do does did have has had will would shall should can could may might must not who whom whose which what when where
why how now then too also again here there already alone either instead anyway today yesterday tomorrow
""".split())


def lexical_pronoun_target(word: str, next_word: str | None, last: bool = False) -> str | None:
    """her/his decided from the next word alone, where it is clear; None when it takes a parse.

    ``next_word`` is the following word, "" at punctuation or the end of the text, None after a digit or such;
    ``last``: the next word ends the clause ("his entirely." may be "hers entirely", so that takes a parse).
    """
    if next_word is None:
        return None
    alone = next_word == "" or next_word.lower() in FUNCTION_WORDS
    if word == "her":
        return "him" if alone else None
    if word == "his":
        return "hers" if alone else (None if last else "her")
    return None


def _neighbour(token, step: int):
    i = token.i + step
    return token.doc[i] if 0 <= i < len(token.doc) else None


def is_determiner(token) -> bool:
    """True when a possessive pronoun token is used before a noun ("her book") rather than alone ("to her")."""
    nxt = _neighbour(token, 1)
    if nxt is None or nxt.is_punct or nxt.is_space or nxt.tag_ in NOT_NOMINAL:
        return False
    after = _neighbour(nxt, 1)
    if nxt.tag_ == "RB" and (after is None or after.is_punct):  # "the fault was his entirely."
        return False
    return token.tag_ == "PRP$" or token.dep_ == "poss"


def _forms(*bases: str) -> frozenset[str]:
    """Regular verb forms of ``bases`` (with irregular forms written out beside them)."""
    out: set[str] = set()
    for b in bases:
        stem = b[:-1] if b.endswith("e") else b
        out.update({b, b + "s", stem + "ed", stem + "ing", b + "d" if b.endswith("e") else b + "ed"})
    return frozenset(out)


# Verbs that take two objects ("gave her advice"): after them, "her" before a second object is the indirect
# object (-> "him"), though the small spaCy models tag it as a possessive.
DITRANSITIVE = _forms("give", "charge", "ask", "show", "send", "offer", "pay", "owe", "hand", "promise", "wish",
                      "grant", "award", "deny", "allow", "fine", "earn", "pass", "serve", "save", "spare", "bill",
                      "guarantee", "issue", "mail", "email", "refuse", "cost", "tell", "teach", "lend", "sell",
                      "bring", "buy", "feed", "throw", "write") | frozenset(
    "gave given gives giving told taught lent sold brought bought fed threw thrown wrote written sent shown showed "
    "paid cost got gotten".split())
# Nouns that make a second object without a determiner ("gave her advice", "showed her thanks").
MASS_OBJECTS = frozenset("""advice thanks help money information permission directions instructions support time
credit feedback news attention access details food water work homework trouble hope comfort confidence courage
notice warning lessons praise pleasure peace encouragement assistance""".split())
# Plural nouns for people after which "her" stays a possessive ("asked her friends to stay").
PERSON_PLURALS = frozenset("""friends children kids parents sons daughters brothers sisters colleagues students
neighbours neighbors guests clients customers staff family relatives cousins grandchildren fans""".split())


def is_indirect_object(token) -> bool:
    """True when "her" sits between a ditransitive verb and its direct object: "charged her 1000 dollars",
    "asked her questions", "gave her advice" (but "gave her book away", "asked her friends" are possessive)."""
    if token.dep_ == "dative":
        return True
    prev, nxt = _neighbour(token, -1), _neighbour(token, 1)
    if prev is None or nxt is None or prev.lower_ not in DITRANSITIVE:
        return False
    word = nxt.lower_
    if nxt.like_num or word in MASS_OBJECTS:
        return True
    return nxt.tag_ == "NNS" and word not in PERSON_PLURALS


def pronoun_target(word: str, token, default: str) -> str:
    """The counterpart of a pronoun (lower case), choosing by grammar where one word maps to two."""
    if token is None:
        return default
    if word == "her":
        return "him" if is_indirect_object(token) or not is_determiner(token) else "his"
    if word == "his":
        return "her" if is_determiner(token) else "hers"
    return default


def acts_as_title(token) -> bool:
    """A rank tagged as a proper noun that heads a name ("Prince Harry") or follows "the" ("the Queen")."""
    prev, nxt = _neighbour(token, -1), _neighbour(token, 1)
    if prev is not None and prev.tag_ == "DT":
        return True
    return nxt is not None and nxt.tag_ in PROPER and (prev is None or prev.tag_ not in PROPER)


def noun_swappable(kind: str, token) -> bool:
    """Whether a gendered noun (or rank) may be swapped: not as a verb, not inside a proper name."""
    if token is None:
        return True
    if token.tag_.startswith("VB"):
        return False
    if token.tag_ in PROPER:
        return kind == "royal" and acts_as_title(token)
    return True


def first_name_swappable(token) -> bool:
    """A first name: a proper noun that is not a surname. A surname closes a run of proper nouns or follows an
    honorific ("John Thomas", "Mr. Thomas"); a rank before a name does not make it a surname ("Prince Harry")."""
    if token is None or token.tag_ not in PROPER:
        return False
    prev, nxt = _neighbour(token, -1), _neighbour(token, 1)
    prev_word = prev.text.lower().rstrip(".") if prev is not None else ""
    after_name = prev_word in HONORIFICS or (prev is not None and prev.tag_ in PROPER and prev_word not in RANKS)
    return not (after_name and (nxt is None or nxt.tag_ not in PROPER))
