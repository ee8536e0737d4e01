"""``toxicity``: scores documents (detoxify, profanity-check or a cascade) and drops, trims, flags or holds them.

Granularity ``document`` decides on the whole text (long texts are scored in windows: maximum over
windows). Granularity ``sentence`` removes only the toxic sentences and keeps the rest; a document is
split into sentences only where its whole-text score comes near a threshold (``sentence_screen``), and
a split document's scores (histograms, sensitivity, side output) are the maximum over its sentences.

Actions: ``drop`` (document mode: to ``dropped/``; sentence mode: the toxic sentences are cut out, and a
document left empty is dropped), ``flag`` (kept, scores in ``meta.toxicity``), ``hold`` (to ``held/`` for
human review). Every document's scores go to the side output ``toxicity_scores/`` (id, scores, decision),
so thresholds can be re-tuned without re-scoring, and precision/recall computed against ground truth.

The report also measures the filter's bias: the removal rate of documents mentioning identity terms of
each group against documents mentioning none (see :mod:`fmaudit.text.identity_terms`).
"""

from __future__ import annotations

import re
import numpy as np

from fmaudit.corpus import Document
from fmaudit.errors import InputError
from fmaudit.scoring.base import ScoreBatch
from fmaudit.stages import register
from fmaudit.stages.base import Resources, Stage, StageResult
from fmaudit.stages.toxicity.settings import SENSITIVITY, ToxicitySettings
from fmaudit.stats import StageStats
from fmaudit.text.pii_marks import META_KEY, recorded_spans, shift_spans

_BOUNDARY = re.compile(r"[.!?]+[\"'”’)\]]*(?=\s)|\n")


@register
class Toxicity(Stage):
    name = "toxicity"
    Settings = ToxicitySettings
    resources = Resources(cpus=1.0, memory_gb=2.0)
    description = "Scores toxicity (detoxify / profanity-check / cascade); drops, trims, flags or holds toxic text."

    def preflight(self) -> None:
        from fmaudit.scoring import preflight_scorer
        from fmaudit.text.identity_terms import load_terms

        self._check_labels(preflight_scorer(self.settings.scorer))
        load_terms(self.settings.identity_terms_file, self.settings.identity_terms)

    def _check_labels(self, labels: tuple[str, ...]) -> None:
        unknown = sorted(set(self.settings.thresholds) - set(labels))
        if unknown:
            raise InputError(f"toxicity stage: thresholds name {', '.join(unknown)}, which scorer "
                             f"{self.settings.scorer.name!r} does not give (its labels: {', '.join(labels)})")

    def setup(self) -> None:
        from fmaudit.scoring import make_scorer
        from fmaudit.text.identity_terms import IdentityMatcher, load_terms

        self.scorer = make_scorer(self.settings.scorer)
        self._check_labels(self.scorer.labels)
        self.scorer.set_thresholds(self.settings.thresholds)
        self._columns = [(j, label, self.settings.thresholds[label]) for j, label in enumerate(self.scorer.labels)
                         if label in self.settings.thresholds]
        self.matcher = IdentityMatcher(load_terms(self.settings.identity_terms_file, self.settings.identity_terms))

    def process(self, docs: list[Document], stats: StageStats) -> StageResult:
        batch = self._score([d.text for d in docs], stats, "doc")
        spans = self._toxic_sentences(docs, batch.values, stats) if self.settings.granularity == "sentence" else {}
        result = StageResult(kept=[], side={"scores": []})
        for i, doc in enumerate(docs):
            hits = spans[i] if self.settings.granularity == "sentence" else \
                [(0, len(doc.text), label, score) for label, score in self._hits(batch.values[i])]
            original = doc.text
            decision = self._apply(doc, hits, batch.values[i], result)
            self._record(doc, original, decision, hits, batch, i, stats, result)
        return result

    def _score(self, texts: list[str], stats: StageStats, level: str) -> ScoreBatch:
        batch = self.scorer.score_batch(texts)
        stats.add(f"scorer_ran:{self.scorer.name}")
        stats.add(f"{level}_scored", len(texts))
        stats.add(f"{level}_cleared", int(batch.cleared.sum()))
        stats.add(f"{level}_audited", int(batch.audited.sum()))
        agree = [not self._hits(batch.values[i]) for i in np.flatnonzero(batch.audited)]
        stats.add(f"{level}_audit_agree", sum(agree))
        for key, n in self.scorer.pop_counts().items():
            stats.add(key, n)
        return batch

    def _hits(self, row: np.ndarray) -> list[tuple[str, float]]:
        """(label, score) of each thresholded label at or above its threshold, most exceeded first."""
        hits = [(label, float(row[j]), float(row[j]) - t) for j, label, t in self._columns
                if not np.isnan(row[j]) and row[j] >= t]
        return [(label, s) for label, s, _ in sorted(hits, key=lambda h: -h[2])]

    def _toxic_sentences(self, docs: list[Document], doc_scores: np.ndarray, stats: StageStats) -> dict:
        """Sentence mode: for each document, the (start, end, label, score) of its toxic sentences. The
        scores of a split document become the maximum over its sentences (what its decision rests on)."""
        screen = self.settings.sentence_screen
        todo = [i for i in range(len(docs)) if any(not np.isnan(doc_scores[i, j]) and doc_scores[i, j] >= screen * t
                                                   for j, _, t in self._columns)]
        pieces = [(i, s, e) for i in todo for s, e in sentence_spans(docs[i].text)]
        stats.add("docs_split", len(todo))
        out: dict[int, list] = {i: [] for i in range(len(docs))}
        if not pieces:
            return out
        sentences = self._score([docs[i].text[s:e] for i, s, e in pieces], stats, "sentence")
        doc_scores[todo] = np.nan
        for (i, s, e), row in zip(pieces, sentences.values):
            doc_scores[i] = np.fmax(doc_scores[i], row)
            hits = self._hits(row)
            if hits:
                out[i].append((s, e, *hits[0]))
        return out

    def _apply(self, doc: Document, hits: list, scores: np.ndarray, result: StageResult) -> str:
        """Carry out the action for one document; returns the decision taken."""
        if not hits:
            result.kept.append(doc)
            return "keep"
        label = max(hits, key=lambda h: h[3])[2]
        reason = f"toxic:{label}"
        action, sentence_mode = self.settings.action, self.settings.granularity == "sentence"
        if action == "hold":
            result.held.append((doc, reason))
            return "hold"
        if action == "flag":
            doc.meta["toxicity"] = {"scores": self._score_dict(scores), "labels": sorted({h[2] for h in hits}),
                                    **({"spans": [[s, e, lab] for s, e, lab, _ in hits]} if sentence_mode else {})}
            result.kept.append(doc)
            return "flag"
        if sentence_mode:
            text, cuts = cut_spans(doc.text, [(s, e) for s, e, _, _ in hits])
            if text.strip():
                if META_KEY in doc.meta:  # the pii stage's spans, moved to their place in the trimmed text
                    doc.meta[META_KEY] = shift_spans(recorded_spans(doc.meta), cuts)
                doc.text = text
                doc.meta["toxicity"] = {"removed_sentences": len(hits), "labels": sorted({h[2] for h in hits})}
                result.kept.append(doc)
                return "trim"
        result.dropped.append((doc, reason))
        return "drop"

    def _score_dict(self, row: np.ndarray) -> dict:
        return {label: (None if np.isnan(row[j]) else round(float(row[j]), 5)) for j, label in enumerate(self.scorer.labels)}

    def _record(self, doc: Document, original: str, decision: str, hits: list, batch: ScoreBatch, i: int,
                stats: StageStats, result: StageResult) -> None:
        row = batch.values[i]
        stats.add("docs")
        for j, label in enumerate(self.scorer.labels):
            if np.isnan(row[j]):
                continue
            stats.hist(f"score:{label}", row[j], 0.0, 1.0, 50)
            for t in SENSITIVITY:
                if row[j] >= t:
                    stats.add(f"ge:{label}:{t}")
        removed = decision != "keep"
        if removed:
            label = max(hits, key=lambda h: h[3])[2]
            stats.add(f"decision:{decision}")
            stats.add(f"{decision}:{label}")
            if self.settings.granularity == "sentence":
                stats.add("toxic_sentences", len(hits))
                stats.add("sentences_removed", len(hits) if decision in ("trim", "drop") else 0)
            s, e, _, score = hits[0]
            stats.sample(decision, id=doc.id, label=label, score=round(score, 4), text=original[s:e][:300])
        self._count_identity(original, removed, hits, stats)
        result.side["scores"].append({"id": doc.id, "scores": self._score_dict(row), "decision": decision,
                                      "labels": sorted({h[2] for h in hits}), "cleared": bool(batch.cleared[i]),
                                      **({"spans": [[s, e] for s, e, _, _ in hits]}
                                         if self.settings.granularity == "sentence" else {})})

    def _count_identity(self, text: str, removed: bool, hits: list, stats: StageStats) -> None:
        """Per identity group: units (documents, or sentences in sentence mode) that mention it, and how many
        of them were removed; units mentioning no group count under ``(none)``."""
        if self.settings.granularity == "sentence":
            toxic = {(h[0], h[1]) for h in hits}
            units = [(text[s:e], (s, e) in toxic) for s, e in sentence_spans(text)]
        else:
            units = [(text, removed)]
        for unit, unit_removed in units:
            for g in self.matcher.groups_in(unit) or ["(none)"]:
                stats.add(f"identity_units:{g}")
                stats.add(f"identity_removed:{g}", int(unit_removed))

    def report(self, stats, ctx):
        from fmaudit.stages.toxicity.report import build_report

        return build_report(self, stats, ctx)


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence: text up to . ! ? (and closing quotes) before whitespace, or a line end."""
    spans, start = [], 0
    for m in _BOUNDARY.finditer(text):
        _add_trimmed(text, start, m.end(), spans)
        start = m.end()
    _add_trimmed(text, start, len(text), spans)
    return spans


def _add_trimmed(text: str, start: int, end: int, spans: list) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if start < end:
        spans.append((start, end))


def remove_spans(text: str, spans: list[tuple[int, int]]) -> str:
    """``text`` without the given (sorted, disjoint) spans and the blanks that followed them."""
    return cut_spans(text, spans)[0]


def cut_spans(text: str, spans: list[tuple[int, int]]) -> tuple[str, list[tuple[int, int, int]]]:
    """:func:`remove_spans`, and what was cut as ``(start, end, 0)`` edits of ``text`` (the blanks after each
    span and the outer whitespace included) for :func:`fmaudit.text.pii_marks.shift_spans`."""
    cut = bytearray(len(text))  # 1 where a character goes
    for s, e in spans:
        while e < len(text) and text[e] in " \t":
            e += 1
        cut[s:e] = b"\x01" * (e - s)
    kept = [i for i in range(len(text)) if not cut[i]]
    for order in (kept, reversed(kept)):  # strip(): leading, then trailing whitespace of what is kept
        for i in order:
            if not text[i].isspace():
                break
            cut[i] = 1
    edits, start = [], None
    for i, flag in enumerate(cut):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            edits.append((start, i, 0))
            start = None
    if start is not None:
        edits.append((start, len(text), 0))
    return "".join(c for c, flag in zip(text, cut) if not flag), edits