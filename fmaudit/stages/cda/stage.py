"""``cda``: counterfactual data augmentation (or substitution) along gender and user-defined axes.

For a document that uses gendered words, the stage writes its counterfactual twin (he <-> she, her -> his/him
by grammar, actor <-> actress, first names by gender, ...) so a model trained on the corpus sees both.
``augment`` keeps the original and adds the twin (``meta.counterfactual_of``, Lu et al. 2018); ``substitute``
replaces each eligible document by its twin with probability ``probability``, seeded by the document id so the
choice is the same for any sharding or number of workers (counterfactual data substitution, Hall Maudslay et
al. 2019). The report gives each axis's term balance before and after, from merged counters.
"""

from __future__ import annotations

from fmaudit.cda.swapper import GENDER, GENDER_SIDES, Axis, Counterfactual, Swapper
from fmaudit.cda.wordlists import GENDER_PAIRS, GENDERED_NAMES, load_pairs
from fmaudit.corpus import Document, derived_id, id_hash64
from fmaudit.stages import register
from fmaudit.stages.base import Check, ReportContext, Resources, Stage, StageReport, StageResult
from fmaudit.stages.cda.settings import CdaSettings
from fmaudit.stats import StageStats
from fmaudit.text.pii_marks import META_KEY, recorded_spans, shift_spans

SAMPLE_CHARS = 300


def swapper_from_settings(settings: CdaSettings) -> Swapper:
    """The swapper a ``cda`` section describes (spaCy is loaded on first need)."""
    from fmaudit.text.nlp import load_spacy

    disable = ("attribute_ruler", "lemmatizer", "ner") + (() if settings.parser else ("parser",))
    gender = load_pairs(settings.gender_pairs or GENDER_PAIRS) if settings.gender else None
    names = load_pairs(settings.names_file or GENDERED_NAMES, True) if settings.names else None
    axes = [Axis(a.name, tuple(a.sides), load_pairs(a.path)) for a in settings.axes]
    return Swapper(gender, names, axes, lambda: load_spacy(settings.spacy_model, disable), settings.nlp_batch_size)


def substitute_draw(seed: int, doc_id: str) -> float:
    """A uniform number in [0, 1) that depends only on the seed and the document id."""
    return id_hash64(f"{seed}\x00{doc_id}") / 2.0 ** 64


def _carried_pii_spans(meta: dict, cf: Counterfactual) -> dict:
    """``meta`` with the pii stage's recorded spans moved to their place in the counterfactual text."""
    if META_KEY not in meta:
        return dict(meta)
    return {**meta, META_KEY: shift_spans(recorded_spans(meta), cf.edits())}


@register
class Cda(Stage):
    name = "cda"
    Settings = CdaSettings
    resources = Resources(cpus=1.0, memory_gb=1.0)
    description = "Counterfactual data augmentation/substitution: gender (grammar-aware) and pair-file axes."

    def setup(self) -> None:
        self.swapper = swapper_from_settings(self.settings)
        self.swapper.nlp  # load spaCy once per worker, not on the first batch
        from fmaudit.text.scrub import scrub

        scrub("warm-up")  # and the samples' anonymizer, so batch timings measure the swaps

    def process(self, docs: list[Document], stats: StageStats) -> StageResult:
        if not hasattr(self, "swapper"):
            self.setup()
        result = StageResult(kept=[])
        for doc, cf in zip(docs, self.swapper.counterfactuals([d.text for d in docs], [d.meta for d in docs])):
            after = cf.before
            done = "cda" in doc.meta or "counterfactual_of" in doc.meta  # by an earlier run: counted, not redone
            stats.add("already_done" if done else "eligible", int(done or cf.candidates >= self.settings.min_terms))
            if not done and cf.changed and len(cf.swaps) >= self.settings.min_terms:
                after = self._emit(doc, cf, stats, result)
            else:
                result.kept.append(doc)
            self._count(stats, "before", cf.before)
            self._count(stats, "after", after)
        return result

    def _emit(self, doc: Document, cf: Counterfactual, stats: StageStats, result: StageResult) -> dict:
        """Keep/add/substitute one eligible document; returns the side counts it leaves in the output."""
        stats.add("changed")
        stats.add("swaps", len(cf.swaps))
        for s in cf.swaps:
            stats.add("swap:" + s.pair)
        if any(not s.name for s in cf.swaps):  # a sample that shows only names would show only <PERSON> tags
            stats.sample("counterfactual", id=doc.id, before=_window(cf.original, cf), after=_window(cf.text, cf))
        info = {"swaps": len(cf.swaps), "axes": sorted({s.axis for s in cf.swaps})}
        if self.settings.mode == "augment":
            twin_id = derived_id(doc.id, "cda")
            result.kept.append(Document(doc.id, doc.text, {**doc.meta, "cda": {"mode": "augment", "twin": twin_id}}))
            meta = {**_carried_pii_spans(doc.meta, cf), "counterfactual_of": doc.id, "cda": {"mode": "augment", **info}}
            result.added.append(Document(twin_id, cf.text, meta))
            cf_after = cf.after()
            return {axis: [a + b for a, b in zip(cf.before[axis], cf_after[axis])] for axis in cf.before}
        if substitute_draw(self.settings.seed, doc.id) < self.settings.probability:
            stats.add("substituted")
            result.kept.append(Document(doc.id, cf.text, {**_carried_pii_spans(doc.meta, cf),
                                                          "cda": {"mode": "substitute", **info}}))
            return cf.after()
        result.kept.append(doc)
        return cf.before

    @staticmethod
    def _count(stats: StageStats, when: str, counts: dict) -> None:
        for axis, values in counts.items():
            for side, n in enumerate(values):
                if n:
                    stats.add(f"{when}:{axis}:{side}", n)

    def axis_sides(self) -> dict[str, tuple[str, str]]:
        """Each axis's name and the names of its two sides, in report order."""
        sides = {GENDER: GENDER_SIDES} if (self.settings.gender or self.settings.names) else {}
        return sides | {a.name: tuple(a.sides) for a in self.settings.axes}

    def report(self, stats: StageStats, ctx: ReportContext) -> StageReport:
        c = stats.counters
        metrics = {"documents": c.get("in", 0), "eligible": c.get("eligible", 0), "changed": c.get("changed", 0),
                   "added": c.get("added", 0), "substituted": c.get("substituted", 0), "swaps": c.get("swaps", 0)}
        balance, checks = {}, []
        for axis, sides in self.axis_sides().items():
            entry = {when: _side_counts(stats, when, axis, sides) for when in ("before", "after")}
            balance[axis] = {"sides": list(sides), **entry}
            metrics[f"{axis}_ratio_before"] = entry["before"]["ratio"]
            metrics[f"{axis}_ratio_after"] = entry["after"]["ratio"]
            imb_before, imb_after = entry["before"]["imbalance"], entry["after"]["imbalance"]
            if imb_before is not None and imb_after is not None:
                checks.append(Check.evaluate(
                    f"{axis}_balance_not_worse", imb_after, imb_before, "max", "warning",
                    f"max({sides[0]}/{sides[1]}, {sides[1]}/{sides[0]}) of {axis} terms after the stage is at most "
                    f"what it was before"))
            if self.settings.max_imbalance_after is not None and imb_after is not None:
                checks.append(Check.evaluate(
                    f"{axis}_imbalance_after", imb_after, self.settings.max_imbalance_after, "max", "error",
                    f"max({sides[0]}/{sides[1]}, {sides[1]}/{sides[0]}) of {axis} terms in the output corpus"))
        swaps = dict(sorted(stats.by_prefix("swap:").items(), key=lambda kv: (-kv[1], kv[0])))
        return StageReport(metrics=metrics, checks=checks,
                           details={"mode": self.settings.mode, "balance": balance, "swaps_per_pair": swaps})


def _side_counts(stats: StageStats, when: str, axis: str, sides: tuple[str, str]) -> dict:
    a, b = (stats.counters.get(f"{when}:{axis}:{i}", 0) for i in (0, 1))
    ratio = a / b if b else None
    imbalance = max(a / b, b / a) if a and b else None
    return {sides[0]: a, sides[1]: b, "ratio": ratio, "imbalance": imbalance}


def _window(text: str, cf: Counterfactual) -> str:
    """About SAMPLE_CHARS characters from shortly before the first word swap (same start in original and twin)."""
    start = max(0, next(s for s in cf.swaps if not s.name).start - 80)
    return text[start:start + SAMPLE_CHARS]
