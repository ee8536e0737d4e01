"""Batched presidio analysis that runs only the spaCy work a finding can use.

Per-document ``AnalyzerEngine.analyze`` runs the whole spaCy pipeline (tagger, parser, lemmatizer,
NER) on every text. Presidio uses just two things from it: NER entities (PERSON and other NER types)
and lemmas (only to look for context words around a pattern match). So here:

* texts are tokenized, and only spaCy's ``ner`` (which has its own tok2vec in the en_core_web_*
  models) runs, batched through ``pipe``, only when an entity type asked for comes from NER, and only
  around the words that can be part of a name (:mod:`fmaudit.pii.ner_focus`, ``ner_focus``);
* context words are looked up only for findings still below the score threshold (the others are
  reported either way), and the lemmas that needs are computed for the few tokens the lookup reads
  (:mod:`fmaudit.pii.lemmas`);
* presidio's phone recognizer (libphonenumber, eight regions) only reads the stretches around digit
  runs long enough to be a phone number;
* pattern recognizers that need digits (or an "@") are not run on texts that have too few;
* NER and tagger matrix products use numpy's BLAS instead of thinc's bundled BLIS (``fast_gemm``);
* long texts are analyzed in overlapping chunks (:mod:`fmaudit.pii.chunks`).

``benchmarks/pii_throughput.py`` measures the speed-up over per-document presidio and the share of
documents whose findings are identical.
"""

from __future__ import annotations

from typing import Iterable

from fmaudit.pii.chunks import plan_chunks
from fmaudit.pii.lemmas import KeywordTest, WindowLemmas, prefetch
from fmaudit.pii.ner_focus import NAME_TYPES, Vocabulary, focused_ner
from fmaudit.pii.recognizers import DIGIT_RUN, build_recognizers, focus_phone_recognizers, set_phone_regions

LEMMA_COMPONENTS = ("tok2vec", "tagger", "attribute_ruler", "lemmatizer")
NER_MARGIN = 10  # tokens of context around a possible name (the NER model reads about four either way)
# Entity types whose recognizers cannot match a text with fewer digits than this: in total ("digits"),
# or in one run of digits separated by at most three of " ().-/+" ("run").
MIN_DIGITS = {"PHONE_NUMBER": ("run", 4), "CREDIT_CARD": ("run", 12), "US_SSN": ("run", 9),
              "IBAN_CODE": ("digits", 2), "US_BANK_NUMBER": ("digits", 8), "US_PASSPORT": ("digits", 8),
              "UK_NHS": ("digits", 10), "IP_ADDRESS": ("digits", 2)}


def token_texts(doc, text: str) -> tuple[list[str], list[int]]:
    """The texts and start offsets of ``doc``'s tokens, without making a spaCy Token object for each."""
    starts_lengths = doc.to_array(["IDX", "LENGTH"]).tolist() if len(doc) else []
    return [text[i:i + n] for i, n in starts_lengths], [i for i, _ in starts_lengths]


def _lazy_artifacts_class():
    from presidio_analyzer.nlp_engine import NlpArtifacts

    class LazyArtifacts(NlpArtifacts):
        """NlpArtifacts whose lemmas and keywords are computed only where presidio reads them."""

        def __init__(self, doc, text: str, nlp_engine, language: str, lemma_pipes):
            scores = nlp_engine._get_scores_for_entities(doc)
            self.entities, self.scores = nlp_engine._get_updated_entities(nlp_engine._get_entities(doc), scores)
            # token texts and offsets as plain lists: presidio only reads their lengths and offsets, and
            # building spaCy Token objects for every token of every text costs more than the rest
            self.tokens, self.tokens_indices = token_texts(doc, text)
            self.nlp_engine = nlp_engine
            self.language = language
            self.lemmas = WindowLemmas(doc, lemma_pipes)
            self.keywords = KeywordTest(nlp_engine, language)

    return LazyArtifacts


class ThresholdAwareEnhancer:
    """Presidio's context enhancer, asked only about findings that still score below the threshold.

    Context words can only raise a score; a finding already at the threshold is reported either way,
    so looking up its context (and the lemmas that needs) changes its score but not what is found.
    """

    def __init__(self, enhancer, threshold: float):
        self.enhancer, self.threshold = enhancer, threshold

    def enhance_using_context(self, text, raw_results, nlp_artifacts, recognizers, context=None):
        sure = [r for r in raw_results if r.score >= self.threshold]
        unsure = [r for r in raw_results if r.score < self.threshold]
        if unsure:
            unsure = self.enhancer.enhance_using_context(text=text, raw_results=unsure, nlp_artifacts=nlp_artifacts,
                                                         recognizers=recognizers, context=context)
        return sure + unsure


def _use_numpy_gemm(component) -> None:
    """Make a spaCy component's thinc layers multiply with numpy (OpenBLAS) rather than BLIS."""
    from thinc.api import NumpyOps

    ops = NumpyOps(use_blis=False)
    model = getattr(component, "model", None)
    if model is not None:
        for node in model.walk():
            node.ops = ops


def add_policy_recognizers(engine, settings, focus: bool = True) -> None:
    """Add to a presidio ``AnalyzerEngine`` the recognizers the pii settings ask for: custom ones from the
    policy, the phone regions, and those of :mod:`fmaudit.pii.international`. ``focus``: the phone recognizer
    reads only the stretches around digit runs (same findings, faster)."""
    from fmaudit.pii.international import LabelledValueRecognizer, NameListRecognizer, StreetAddressRecognizer

    registry, language = engine.registry, settings.language
    for recognizer in build_recognizers(settings.recognizers, language):
        registry.add_recognizer(recognizer)
    if focus:
        focus_phone_recognizers(registry, regions=settings.phone_regions)
    else:
        set_phone_regions(registry, settings.phone_regions)
    entities = settings.all_entities()
    if settings.name_locales and "PERSON" in entities:
        common = Vocabulary.of(engine.nlp_engine.nlp[language]).common
        registry.add_recognizer(NameListRecognizer(settings.name_locales, common, language))
    if settings.street_addresses:
        registry.add_recognizer(StreetAddressRecognizer(language))
    labelled = [t for t in settings.label_recognizers if t in entities]
    if labelled:
        registry.add_recognizer(LabelledValueRecognizer(labelled, language))


class BatchAnalyzer:
    """Finds PII in batches of texts with presidio, configured by the pii stage's settings (:class:`fmaudit.stages.pii.settings.PiiSettings`)."""

    def __init__(self, settings):
        from fmaudit.text.nlp import presidio_analyzer

        self.settings = settings
        self.language = settings.language
        self.engine = presidio_analyzer(settings.spacy_model, settings.language)
        add_policy_recognizers(self.engine, settings)
        self.entities = settings.all_entities()
        self.engine.context_aware_enhancer = ThresholdAwareEnhancer(self.engine.context_aware_enhancer,
                                                                    settings.score_threshold)
        self._check_entities()
        self.nlp = self.engine.nlp_engine.nlp[settings.language]
        ner = self.nlp.get_pipe("ner") if "ner" in self.nlp.pipe_names else None
        mapping = self.engine.nlp_engine.ner_model_configuration.model_to_presidio_entity_mapping
        ner_types = {mapping.get(label, label) for label in (ner.labels if ner else ())} & set(self.entities)
        self.ner = ner if ner_types else None
        self.words = None
        if settings.ner_focus and ner_types <= NAME_TYPES:
            from fmaudit.pii.international import faker_names

            lists = faker_names(tuple(settings.name_locales)) if settings.name_locales else None
            self.words = Vocabulary.of(self.nlp, lists[0] | lists[1] if lists else None)
        self.lemma_pipes = [self.nlp.get_pipe(p) for p in LEMMA_COMPONENTS if p in self.nlp.pipe_names]
        if settings.fast_gemm:
            for component in ([self.ner] if self.ner else []) + self.lemma_pipes:
                _use_numpy_gemm(component)
        self._artifacts = _lazy_artifacts_class()

    def _check_entities(self) -> None:
        from fmaudit.errors import PolicyError

        known = set(self.engine.get_supported_entities(self.language))
        unknown = [e for e in self.entities if e not in known]
        if unknown:
            raise PolicyError(f"pii.entities: no recognizer finds {', '.join(unknown)} "
                              f"(known: {', '.join(sorted(known))}; add a custom recognizer)")

    def entities_for(self, text: str) -> list[str]:
        """The requested entity types a recognizer could find in ``text`` (cheap character tests)."""
        digits = sum(map(str.isdigit, text))
        run = max((sum(map(str.isdigit, m.group())) for m in DIGIT_RUN.finditer(text)), default=0) if digits else 0
        have = {"digits": digits, "run": run}
        out = []
        for e in self.entities:
            need = MIN_DIGITS.get(e)
            if need and have[need[0]] < need[1] and not (e == "IP_ADDRESS" and ":" in text):
                continue
            if e == "EMAIL_ADDRESS" and "@" not in text:
                continue
            out.append(e)
        return out

    def _run_ner(self, docs: list, texts: list[str]) -> None:
        """Set ``doc.ents`` of each tokenized doc."""
        if self.ner is None:
            return
        if self.words is not None:
            tokens = [token_texts(doc, text)[0] for doc, text in zip(docs, texts)]
            focused_ner(self.ner, docs, tokens, self.words, NER_MARGIN, self.settings.nlp_batch_size)
            return
        for _ in self.ner.pipe(docs, batch_size=self.settings.nlp_batch_size):
            pass

    def analyze(self, texts: Iterable[str]) -> list[list]:
        """For each text, its presidio ``RecognizerResult`` list (offsets into that text)."""
        from threadpoolctl import threadpool_limits

        # One worker per core: BLAS threads would only compete (and small products pay their start-up).
        with threadpool_limits(limits=1, user_api="blas"):
            return self._analyze(list(texts))

    def _analyze(self, texts: list[str]) -> list[list]:
        pieces = [(i, chunk, text[chunk.start:chunk.end]) for i, text in enumerate(texts)
                  for chunk in plan_chunks(text, self.settings.chunk_chars, self.settings.chunk_overlap)]
        docs = [self.nlp.make_doc(piece) for _, _, piece in pieces]
        self._run_ner(docs, [piece for _, _, piece in pieces])
        jobs = []
        for (i, chunk, piece), doc in zip(pieces, docs):
            entities = self.entities_for(piece)
            if entities:
                artifacts = self._artifacts(doc, piece, self.engine.nlp_engine, self.language, self.lemma_pipes)
                jobs.append((i, chunk, piece, entities, artifacts))
        # First pass records which lemmas the context enhancer reads; they are tagged in one batch; the
        # documents that read any are analyzed again with them.
        for *_, artifacts in jobs:
            artifacts.lemmas.recording = True
        found = [self._presidio(piece, entities, artifacts) for _, _, piece, entities, artifacts in jobs]
        again = [k for k, job in enumerate(jobs) if job[4].lemmas.wanted]
        prefetch([jobs[k][4].lemmas for k in again], self.lemma_pipes, self.settings.nlp_batch_size)
        for k in again:
            _, _, piece, entities, artifacts = jobs[k]
            artifacts.lemmas.recording = False
            found[k] = self._presidio(piece, entities, artifacts)
        out: list[list] = [[] for _ in texts]
        for (i, chunk, *_), results in zip(jobs, found):
            out[i].extend(chunk.shift(r) for r in results if chunk.owns(r.start))
        return out

    def _presidio(self, text: str, entities: list[str], artifacts) -> list:
        return self.engine.analyze(text=text, language=self.language, entities=entities,
                                   score_threshold=self.settings.score_threshold,
                                   allow_list=self.settings.allow_list or None, nlp_artifacts=artifacts)
