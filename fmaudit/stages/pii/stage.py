"""``pii``: finds personal data with presidio and rewrites it with presidio-anonymizer.

Runs first in the policies, so documents dropped by later stages are already anonymized. Per
document it analyzes the text (batched, see :mod:`fmaudit.pii.analyze`), keeps non-overlapping
findings, rewrites each with its entity type's operator (:mod:`fmaudit.pii.operators`), records keyed
hashes of the values in the ledger side output ``pii_ledger/``, and optionally drops documents whose
PII density is above ``max_density``. Its report ``pii.json`` gives counts per entity type and
operator, the PII density histogram and plot, and, with a ground-truth file, recall and precision.
"""

from __future__ import annotations

from typing import Optional

from fmaudit.corpus import Document
from fmaudit.errors import InputError
from fmaudit.stages.pii.settings import PiiSettings
from fmaudit.stages import register
from fmaudit.stages.base import ReportContext, Resources, Stage, StageReport, StageResult
from fmaudit.stats import StageStats
from fmaudit.text.pii_marks import META_KEY

NER_RECOGNIZER = "SpacyRecognizer"  # presidio's recognizer of spaCy's NER findings
DENSITY_HIST = ("pii_density", 0.0, 0.5, 25)  # fraction of characters inside PII spans


@register
class PiiStage(Stage):
    name = "pii"
    Settings = PiiSettings
    resources = Resources(cpus=1.0, memory_gb=1.0)
    description = "Finds PII with presidio and replaces, masks, hashes, encrypts or pseudonymizes it."

    def preflight(self) -> None:
        """Stop before any work when the operators or the ledger need a key that is not there."""
        from fmaudit.pii.keys import load_key, missing_key_message

        s = self.settings
        if load_key(s.key_env, s.key_file, s.demo_key) is None:
            if s.needs_key():
                raise InputError(missing_key_message(s.key_env, s.key_file, "hash or encrypt operators"))
            if s.ledger == "on":
                raise InputError(missing_key_message(s.key_env, s.key_file, "ledger: on"))

    def setup(self) -> None:
        from fmaudit.pii.analyze import BatchAnalyzer
        from fmaudit.pii.keys import load_key
        from fmaudit.pii.operators import Rewriter

        self.preflight()
        s = self.settings
        self.key = load_key(s.key_env, s.key_file, s.demo_key)
        self.write_ledger = self.key is not None and s.ledger != "off"
        self.analyzer = BatchAnalyzer(s)
        self.rewriter = Rewriter(s, self.key)

    def process(self, docs: list[Document], stats: StageStats) -> StageResult:
        from fmaudit.pii.fields import meta_strings
        from fmaudit.pii.ledger import HASHED_ID, ledger_rows, value_hash
        from fmaudit.pii.spans import resolve_spans, widen_person_spans

        if not hasattr(self, "analyzer"):
            self.setup()
        result = StageResult(kept=[], side={"ledger": []} if self.write_ledger else {})
        if not self.write_ledger:
            stats.add("ledger_skipped_docs", len(docs))
        s, n = self.settings, len(docs)
        extra = [(i, path, value) for i, doc in enumerate(docs) for path, value in meta_strings(doc.meta, s.meta_fields)]
        texts = [d.text for d in docs] + ([d.id for d in docs] if s.scan_ids else []) + [v for *_, v in extra]
        found_all = self.analyzer.analyze(texts)  # text, ids and meta strings in one batch
        # An id is an identifier, not prose: statistical NER guesses on it ("demo-000051" tagged PERSON) are
        # noise; the pattern, checksum and list recognizers (e-mails, phones, names from lists) decide.
        id_clean = [not [r for r in f if r.recognition_metadata.get("recognizer_name") != NER_RECOGNIZER]
                    for f in found_all[n:2 * n]] if s.scan_ids else [False] * n
        meta_found = found_all[2 * n if s.scan_ids else n:]
        metas = self._rewrite_meta(docs, extra, meta_found, stats)
        for doc, found, clean, meta in zip(docs, found_all[:n], id_clean, metas):
            spans = resolve_spans(found)
            if self.settings.person_titles:
                spans = widen_person_spans(doc.text, spans)
            new_doc = self._rewrite(doc if meta is doc.meta else Document(doc.id, doc.text, meta), spans, stats)
            if not clean:
                stats.add("ids_hashed_in_ledger")
            if self.write_ledger and spans:
                ledger_id = doc.id if clean else HASHED_ID + value_hash(self.key, "DOCUMENT_ID", doc.id)
                result.side["ledger"].extend(ledger_rows(self.key, ledger_id, doc.text, spans, self._operator_name))
            reason = self._drop_reason(doc, spans, stats)
            if reason:
                result.dropped.append((new_doc, reason))
            else:
                result.kept.append(new_doc)
        return result

    def _rewrite_meta(self, docs: list[Document], extra: list, found: list, stats: StageStats) -> list[dict]:
        """Each document's meta with the PII found in its scanned strings rewritten (the same object when
        nothing was found)."""
        from fmaudit.pii.fields import with_values
        from fmaudit.pii.spans import resolve_spans

        values: list[dict] = [{} for _ in docs]
        for (i, path, value), results in zip(extra, found):
            spans = resolve_spans(results)
            if spans:
                values[i][path], _ = self.rewriter.rewrite_with_spans(docs[i].id, value, spans)
                for sp in spans:
                    stats.add(f"meta_found:{sp.entity_type}")
        return [with_values(doc.meta, v) for doc, v in zip(docs, values)]

    def _operator_name(self, entity_type: str) -> str:
        return self.settings.operator_for(entity_type).operator

    def _rewrite(self, doc: Document, spans, stats: StageStats) -> Document:
        stats.add("chars", len(doc.text))
        if not spans:
            return doc
        text, written = self.rewriter.rewrite_with_spans(doc.id, doc.text, spans)
        counts: dict[str, int] = {}
        for s in spans:
            counts[s.entity_type] = counts.get(s.entity_type, 0) + 1
            stats.add(f"found:{s.entity_type}")
            stats.add(f"operator:{s.entity_type}:{self._operator_name(s.entity_type)}")
        for t in counts:
            stats.add(f"docs_with:{t}")
        stats.add("docs_touched")
        stats.add("pii_chars", sum(s.end - s.start for s in spans))
        first = spans[0].start  # text before the first finding is unchanged: show it rewritten, in context
        stats.sample("anonymized", id=doc.id, text=text[max(0, first - 60):first + 160])
        return Document(doc.id, text, {**doc.meta, "pii": counts, META_KEY: written})

    def _drop_reason(self, doc: Document, spans, stats: StageStats) -> Optional[str]:
        density = sum(s.end - s.start for s in spans) / max(len(doc.text), 1)
        name, lo, hi, bins = DENSITY_HIST
        stats.hist(name, density, lo, hi, bins)
        limit = self.settings.max_density
        if limit is not None and density > limit:
            return "pii_density"
        return None

    def report(self, stats: StageStats, ctx: ReportContext) -> StageReport:
        from fmaudit.stages.pii.report import build_report

        return build_report(self.settings, stats, ctx)
