"""Running spaCy's NER only around the words that can start a name.

PERSON (and LOCATION, ORGANIZATION, NRP) entities are proper nouns: the small English models tag
practically nothing as a name that holds no capitalized word. A capitalized word is a *candidate*
unless it is "I" or opens a sentence and is a stop word ("The", "When", "Our"), or, when name lists
are given, opens a sentence, is ordinary English, is no known first or last name, and the next word
is not capitalized ("Toast the spices", "Leftovers keep"): every sentence would otherwise be a
candidate. The model does tag such words as names now and then ("Mulch keeps the roots cool",
"Runners should"); those findings are lost, on purpose (the benchmark counts them). A lowercase
word that is not ordinary English is a candidate too (code, handles, URLs: the model tags some of
those as names).
The NER model decides a token from about four tokens on either side (its tok2vec's receptive field)
and the token before, so NER runs on windows of ``margin`` tokens around the candidates and keeps the
entities at least ``RELIABLE`` tokens from a window's cuts. Texts whose windows cover most of them are run whole. The benchmark
(``benchmarks/pii_throughput.py``) measures how often this changes what presidio finds.
"""

from __future__ import annotations

NAME_TYPES = {"PERSON", "LOCATION", "ORGANIZATION", "NRP"}
SENTENCE_END = {".", "!", "?", "…"}
WHOLE_ABOVE = 0.8  # run the whole text when windows cover more than this share of it
RELIABLE = 5  # tokens from a window's cut beyond which NER sees the same context as in the whole text


class Vocabulary:
    """Words that tell a candidate apart: ``stop`` words open sentences but are never names (the, in, our);
    a word is ``common`` (ordinary lowercase English) when it, or its base form by the lemmatizer's suffix
    rules (plans -> plan, spices -> spice), is in the spaCy lemmatizer's word lists."""

    def __init__(self, stop: frozenset[str], common: frozenset[str], suffixes: tuple[tuple[str, str], ...] = (),
                 names: frozenset[str] | None = None):
        self.stop, self.words, self.suffixes, self.names = stop, common, suffixes, names
        self._known: dict[str, bool] = {}

    @classmethod
    def of(cls, nlp, names: frozenset[str] | None = None) -> "Vocabulary":
        """The vocabulary of spaCy pipeline ``nlp``; ``names``: known first and last names (capitalized), or
        None to treat every sentence-initial word but stop words as a candidate."""
        words: set[str] = set(nlp.Defaults.stop_words)
        suffixes: set[tuple[str, str]] = set()
        if "lemmatizer" in nlp.pipe_names:
            lookups = nlp.get_pipe("lemmatizer").lookups
            for table in ("lemma_index", "lemma_exc"):
                if lookups.has_table(table):
                    for entries in lookups.get_table(table).values():
                        words.update(entries)
            if lookups.has_table("lemma_rules"):
                for rules in lookups.get_table("lemma_rules").values():
                    suffixes.update((old, new) for old, new in rules if old.isalpha())
        return cls(frozenset(w for w in nlp.Defaults.stop_words if w.islower()), frozenset(words),
                   tuple(sorted(suffixes)), names)

    def common(self, word: str) -> bool:
        word = word.lower()
        known = self._known.get(word)
        if known is None:
            known = word in self.words or any(
                word.endswith(old) and word[:len(word) - len(old)] + new in self.words for old, new in self.suffixes)
            if len(self._known) < 200_000:
                self._known[word] = known
        return known

    def ordinary_opener(self, word: str, next_word: str) -> bool:
        """True for a sentence's first word that cannot start a name: a stop word, or (with name lists) an
        ordinary English word that is no known name and is not followed by a capitalized word."""
        if word.lower() in self.stop:
            return True
        return (self.names is not None and not next_word[:1].isupper() and word not in self.names
                and word.capitalize() not in self.names and self.common(word))


def candidates(tokens: list[str], vocab: Vocabulary) -> list[int]:
    """Indices of the tokens the NER model might put in a name: capitalized words (but "I", and ordinary
    words opening a sentence, :meth:`Vocabulary.ordinary_opener`), and lowercase words that are not
    ordinary English (``orjson``, ``size_t``, URLs), which the model now and then tags as names too."""
    out, initial = [], True
    last = len(tokens) - 1
    for i, text in enumerate(tokens):
        if text[:1].isupper():
            if text != "I" and not (initial and vocab.ordinary_opener(text, tokens[i + 1] if i < last else "")):
                out.append(i)
        elif any(c.isalpha() for c in text) and not vocab.common(text):
            out.append(i)
        initial = text in SENTENCE_END or "\n" in text
    return out


def windows(n: int, marks: list[int], margin: int) -> list[tuple[int, int]]:
    """Merged token ranges of ``margin`` tokens around each mark."""
    out: list[tuple[int, int]] = []
    for i in marks:
        lo, hi = max(0, i - margin), min(n, i + margin + 1)
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return out


def focused_ner(ner, docs: list, tokens: list[list[str]], vocab: Vocabulary, margin: int,
                batch_size: int) -> None:
    """Set ``doc.ents`` of each tokenized doc with ``ner`` run only on the windows that can hold names."""
    from spacy.attrs import NORM, SPACY
    from spacy.tokens import Doc, Span

    jobs = []  # (doc index, start, end, True for a window; None: the whole doc)
    for k, (doc, toks) in enumerate(zip(docs, tokens)):
        marks = candidates(toks, vocab)
        spans = windows(len(doc), marks, margin)
        if sum(b - a for a, b in spans) > WHOLE_ABOVE * len(doc):
            jobs.append((k, 0, len(doc), None))
        else:
            jobs.extend((k, a, b, True) for a, b in spans)
    arrays = {}  # per doc: NORM (tokenizer exceptions set it; NER reads it) and SPACY of each token

    def window_doc(k: int, a: int, b: int):
        if k not in arrays:
            arrays[k] = docs[k].to_array([NORM, SPACY])
        arr = arrays[k][a:b]
        part = Doc(docs[k].vocab, words=tokens[k][a:b], spaces=[bool(x) for x in arr[:, 1]])
        part.from_array([NORM], arr[:, :1])
        return part

    parts = ner.pipe((docs[k] if marked is None else window_doc(k, a, b) for k, a, b, marked in jobs),
                     batch_size=batch_size)
    found: dict[int, list] = {}
    for (k, a, b, marked), part in zip(jobs, parts):
        if marked is None:
            continue  # the whole doc went through ner, which set its entities
        # entities far enough from a cut to have been decided on the same context as in the whole text
        lo = a + RELIABLE if a > 0 else 0
        hi = b - RELIABLE if b < len(docs[k]) else b
        found.setdefault(k, []).extend(Span(docs[k], a + e.start, a + e.end, label=e.label_) for e in part.ents
                                       if lo <= a + e.start and a + e.end <= hi)
    for k, ents in found.items():
        docs[k].ents = ents
