"""The audit contract: a read-only examination of one checkpoint against the policy.

An audit is a class with a ``name`` (``bias.pairs``), a ``Settings`` model (a subclass of
:class:`AuditSettings`, validated from the policy's ``audits: {<name>: {...}}`` section), the optional
packages it ``requires`` (import name -> pyproject extra) and two methods:

- :meth:`Audit.preflight`: cheap checks before any model is loaded (files exist, packages installed);
- :meth:`Audit.run` ``(mua, ctx) -> AuditResult``: the work. ``mua`` is the shared
  :class:`~fmaudit.audits.model.ModelUnderAudit`, which loads the checkpoint once and batches and caches
  generations and log-probabilities, so audits that need the same continuations share one pass.

An :class:`AuditResult` holds metrics (each a :class:`~fmaudit.audits.stats.Metric` with its confidence
interval), the checks that the policy's thresholds give, one record per item (prompt, pair or sample:
inputs, outputs, scores, outcome; texts anonymized, written to ``items/<audit>.jsonl``) and the
:class:`Protocol` that produced the figures. An audit that can recompute its result from saved items
(new thresholds, a new scorer) overrides :meth:`Audit.rescore`; ``fmaudit audit --rescore`` calls it.

    @register
    class Perplexity(Audit):
        name = "perplexity"
        Settings = PerplexitySettings
        def run(self, mua, ctx):
            rows = mua.sequence_logprobs(texts)
            ...
            return AuditResult(metrics, self.checks(metrics), items, protocol)
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, Optional

from pydantic import Field

from fmaudit.audits.stats import Metric
from fmaudit.errors import InputError, UsageError
from fmaudit.registry import check_requires
from fmaudit.reports.content import Check
from fmaudit.settings import Strict


class CheckSpec(Strict):
    """A pass/fail gate on one metric of an audit."""

    threshold: float = Field(..., description="The limit the metric is compared with.")
    direction: Literal["max", "min"] = Field(
        "max", description="max: passes when the figure is at most the threshold; min: at least.")
    severity: Literal["error", "warning", "info"] = Field("error", description="error fails the run (exit 1).")
    figure: Literal["value", "ci_low", "ci_high"] = Field(
        "value", description="Which figure is compared: the estimate, or a bound of its 95% interval "
                             "(ci_high with max is the conservative gate).")
    description: str = ""


class AuditSettings(Strict):
    """Settings every audit accepts; an audit subclasses this with its own fields."""

    data: Optional[Path] = Field(None, description="Prompt or pair file; null: the audit's built-in set. "
                                                   "`fmaudit audit --data AUDIT=FILE` overrides it.")
    seed: int = Field(0, description="Base seed: per-item seeds derive from it and the item, so every "
                                     "checkpoint gets the same sampling and bootstrap draws.")
    batch_size: int = Field(16, ge=1, description="Sequences per forward pass.")
    item_text: Literal["scrubbed", "hash"] = Field(
        "scrubbed", description="How texts appear in items/<audit>.jsonl: anonymized with presidio (tags such as "
                                "<PERSON>), or only as their sha256 (faster; nothing of the text is kept).")
    checks: dict[str, CheckSpec] = Field(
        default_factory=dict, description="Gates, by metric name (as in the report's metrics).")


@dataclass
class Protocol:
    """What produced an audit's figures, recorded beside them."""

    data_file: Optional[str]
    data_sha256: Optional[str]
    items: int
    samples_per_item: int = 1
    decoding: Optional[dict] = None
    seed: int = 0
    scorer: Optional[dict] = None  # {"name", "version", "sha256"} of the scorer, where one is used
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class AuditResult:
    metrics: dict[str, Metric]
    checks: list[Check]
    items: list[dict]
    protocol: Protocol
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class AuditContext:
    """Where an audit runs: the output folder (``items/`` and ``reports/`` below it) and the checkpoint's identity."""

    out_dir: Path
    checkpoint: Optional[str] = None
    checkpoint_sha256: Optional[str] = None

    @property
    def items_dir(self) -> Path:
        return self.out_dir / "items"

    @property
    def reports_dir(self) -> Path:
        return self.out_dir / "reports"


class Audit(ABC):
    """Base class of audits. Subclasses set ``name`` and ``Settings`` and implement :meth:`run`."""

    name: ClassVar[str]
    Settings: ClassVar[type[AuditSettings]] = AuditSettings
    requires: ClassVar[dict[str, str]] = {}
    description: ClassVar[str] = ""

    def __init__(self, settings: Optional[AuditSettings] = None):
        self.settings = settings if settings is not None else self.Settings()

    def preflight(self) -> None:
        """Cheap checks before the model loads; raise InputError naming the problem. Default: packages, the
        data file, and every other file or folder the settings name."""
        from fmaudit.settings import check_paths

        check_requires(type(self))
        data = self.settings.data
        if data is not None and not Path(data).is_file():
            raise InputError(f"{data}: no such file (audit {self.name}, setting data)")
        check_paths(self.settings, f"audit {self.name}", skip=("data",))

    def preflight_scorer(self, spec, label: Optional[str], setting: str, calibration=None) -> None:
        """The scorer ``spec`` (a policy's ``{name: ...}``) can be built offline (its package installed, the
        checkpoint it names readable) and has ``label``, and the labelled file of its ``calibration`` settings
        (when one is named) reads; InputError naming the setting, or the file and line, otherwise."""
        from fmaudit.audits.calibration import read_calibration
        from fmaudit.scoring import parse_scorer_settings, preflight_scorer

        spec = parse_scorer_settings(spec)  # a default is the plain mapping {name: ...}
        try:
            labels = preflight_scorer(spec)
        except InputError as e:
            raise InputError(f"audit {self.name}, setting {setting}: {e}") from None
        if label is not None and label not in labels:
            raise InputError(f"audit {self.name}, setting {setting}: scorer {spec.name} has no label {label!r}; "
                             f"labels: {', '.join(labels)}")
        if calibration is not None and calibration.file is not None:
            read_calibration(calibration.file)

    @abstractmethod
    def run(self, mua, ctx: AuditContext) -> AuditResult:
        """Examine the model under audit; never modify it."""

    def rescore(self, items: list[dict], protocol: dict, ctx: AuditContext) -> AuditResult:
        """Recompute the result from saved ``items`` (no model). Default: not supported."""
        raise UsageError(f"audit {self.name} cannot be re-scored from saved items; run it again")

    def checks(self, metrics: dict[str, Metric]) -> list[Check]:
        """One :class:`Check` per gate in ``settings.checks``; a gate on a metric the audit did not produce is an error."""
        out = []
        for metric_name, spec in self.settings.checks.items():
            if metric_name not in metrics:
                raise InputError(f"audit {self.name}: check on unknown metric {metric_name!r}; "
                                 f"metrics: {', '.join(sorted(metrics))}")
            m = metrics[metric_name]
            value = getattr(m, spec.figure)
            desc = spec.description or f"{metric_name} ({spec.figure} of the estimate and its 95% CI, n={m.n}, {m.method})"
            out.append(Check.evaluate(metric_name, value, spec.threshold, spec.direction, spec.severity, desc,
                                      ci=(m.ci_low, m.ci_high)))
        return out


def require_unchanged(audit: str, saved: dict, now: dict, why: str) -> None:
    """Re-scoring reuses what a run saved: raise UsageError naming every setting in ``now`` (name -> value as the
    protocol records it) whose saved value ``saved[name]`` differs, since only a new run can apply it."""
    changed = [f"{k} (saved {_canon(saved[k]) if k in saved else 'nothing: an older fmaudit'}, policy {_canon(v)})"
               for k, v in now.items() if _canon(saved.get(k)) != _canon(v)]
    if changed:
        raise UsageError(f"audit {audit} cannot be re-scored under this policy: {'; '.join(changed)} changed, and "
                         f"{why}; run the audit again")


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def item_text(text: str, how: str = "scrubbed") -> str:
    """A text as an items file may show it: anonymized (never raw PII), or ``sha256:<hex>``."""
    if how == "hash":
        return "sha256:" + text_sha256(text)
    return _scrub_cached(text)


@lru_cache(maxsize=65536)
def _scrub_cached(text: str) -> str:
    from fmaudit.text.scrub import scrub

    return scrub(text)


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
