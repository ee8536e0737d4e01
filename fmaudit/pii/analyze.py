"""Batched presidio analysis that runs only the spaCy work a finding can use.

Per-document ``AnalyzerEngine.analyze`` runs the whole spaCy pipeline (tagger, parser, lemmatizer,
NER) on every text. Presidio uses just two things from it: NER entities (for PERSON and other NER
types) and lemmas (only to look for context words around a pattern match). So here:

* texts go through ``nlp.pipe`` in batches with only ``ner`` enabled (it has its own tok2vec in the
  en_core_web_* models), or with no component at all when no requested type comes from NER;
* lemmas are computed lazily, per text, only when the context enhancer asks for them, which it does
  only for a pattern match of a recognizer with context words;
* long texts are analyzed in overlapping chunks (see :mod:`fmaudit.pii.chunks`).

The findings are those of ``AnalyzerEngine.analyze`` on the same text: the benchmark
``benchmarks/pii_throughput.py`` measures the share of documents with identical spans.
"""

from __future__ import annotations

from typing import Iterable, Optional

from fmaudit.pii.chunks import plan_chunks
from fmaudit.pii.recognizers import build_recognizers
from fmaudit.pii.settings import PiiSettings

LEMMA_COMPONENTS = ("tok2vec", "tagger", "attribute_ruler", "lemmatizer")


def _lazy_artifacts_class():
    from presidio_analyzer.nlp_engine import NlpArtifacts

    class LazyLemmaArtifacts(NlpArtifacts):
        """NlpArtifacts whose lemmas (and keywords) are computed on first use."""

        def __init__(self, doc, nlp_engine, language: str, lemmatize):
            entities = nlp_engine._get_entities(doc)
            scores = nlp_engine._get_scores_for_entities(doc)
            self.entities, self.scores = nlp_engine._get_updated_entities(entities, scores)
            self.tokens = doc
            self.tokens_indices = [t.idx for t in doc]
            self.nlp_engine = nlp_engine
            self.language = language
            self._lemmatize = lemmatize
            self._lemmas: Optional[list[str]] = None
            self._keywords: Optional[list[str]] = None

        @property
        def lemmas(self) -> list[str]:
            if self._lemmas is None:
                self._lemmas = [t.lemma_ for t in self._lemmatize(self.tokens)]
            return self._lemmas

        @property
        def keywords(self) -> list[str]:
            if self._keywords is None:
                self._keywords = self.set_keywords(self.nlp_engine, self.lemmas, self.language)
            return self._keywords

    return LazyLemmaArtifacts


class BatchAnalyzer:
    """Finds PII in batches of texts with presidio, configured by :class:`PiiSettings`."""

    def __init__(self, settings: PiiSettings):
        from fmaudit.nlp import presidio_analyzer

        self.settings = settings
        self.engine = presidio_analyzer(settings.spacy_model, settings.language)
        for recognizer in build_recognizers(settings.recognizers, settings.language):
            self.engine.registry.add_recognizer(recognizer)
        self.entities = settings.all_entities()
        self._check_entities()
        self.nlp = self.engine.nlp_engine.nlp[settings.language]
        ner_types = set(self.engine.nlp_engine.get_supported_entities())
        uses_ner = bool(ner_types & set(self.entities)) and "ner" in self.nlp.pipe_names
        self.pipe_disable = [p for p in self.nlp.pipe_names if not (uses_ner and p == "ner")]
        self.lemma_pipes = [self.nlp.get_pipe(p) for p in LEMMA_COMPONENTS if p in self.nlp.pipe_names]
        self._artifacts = _lazy_artifacts_class()

    def _check_entities(self) -> None:
        from fmaudit.errors import PolicyError

        known = set(self.engine.get_supported_entities(self.settings.language))
        unknown = [e for e in self.entities if e not in known]
        if unknown:
            raise PolicyError(f"pii.entities: no recognizer finds {', '.join(unknown)} "
                              f"(known: {', '.join(sorted(known))}; add a custom recognizer)")

    def _lemmatize(self, doc):
        for pipe in self.lemma_pipes:
            doc = pipe(doc)
        return doc

    def analyze_one(self, text: str, doc):
        """Presidio's findings on ``text`` whose NER-only spaCy ``doc`` is given."""
        artifacts = self._artifacts(doc, self.engine.nlp_engine, self.settings.language, self._lemmatize)
        return self.engine.analyze(text=text, language=self.settings.language, entities=self.entities,
                                   score_threshold=self.settings.score_threshold,
                                   allow_list=self.settings.allow_list or None, nlp_artifacts=artifacts)

    def analyze(self, texts: Iterable[str]) -> list[list]:
        """For each text, its presidio ``RecognizerResult`` list (offsets into that text)."""
        from presidio_analyzer import RecognizerResult

        texts = list(texts)
        pieces: list[tuple[int, object, str]] = []  # (text index, chunk, chunk text)
        for i, text in enumerate(texts):
            for chunk in plan_chunks(text, self.settings.chunk_chars, self.settings.chunk_overlap):
                pieces.append((i, chunk, text[chunk.start:chunk.end]))
        out: list[list] = [[] for _ in texts]
        docs = self.nlp.pipe((p[2] for p in pieces), batch_size=self.settings.nlp_batch_size,
                             disable=self.pipe_disable)
        for (i, chunk, piece), doc in zip(pieces, docs):
            for r in self.analyze_one(piece, doc):
                if chunk.owns(r.start):
                    out[i].append(r if chunk.start == 0 else
                                  RecognizerResult(r.entity_type, r.start + chunk.start, r.end + chunk.start, r.score,
                                                   r.analysis_explanation, r.recognition_metadata))
        return out
