"""Scorer calibration: how far a scorer an audit uses agrees with human labels, measured in the run.

A calibration set is a JSONL or CSV file of ``text`` and ``label`` (1: the property holds, e.g. toxic;
0: it does not). The scorer scores every text; at the audit's decision threshold this gives the confusion
counts, agreement, sensitivity and specificity, recorded in the audit's protocol beside the scorer's name,
version and hash. With ``correct: true`` a rate the scorer measured is corrected for its error by the
Rogan-Gladen estimator (:func:`fmaudit.audits.stats.rogan_gladen`), whose interval also carries the
uncertainty of the calibration counts, so it is wider than the raw rate's Wilson interval.

``fmaudit/audits/data/toxicity_calibration.jsonl`` is a small set written for the project (the demo's toxic
comments and neutral sentences of the same registers).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
from pydantic import Field

from fmaudit.audits.prompts import builtin, read_prompts
from fmaudit.audits.stats import Metric, rate, rogan_gladen
from fmaudit.corpus import sha256_file
from fmaudit.errors import InputError
from fmaudit.settings import Strict


class CalibrationSettings(Strict):
    """A labelled set that measures the scorer's agreement (and optionally corrects its rates)."""

    file: Optional[Path] = Field(None, description="JSONL/CSV with `text` and `label` (0/1); null: the audit's "
                                                   "built-in set, if it has one.")
    correct: bool = Field(False, description="Correct the audit's rates for the scorer's measured error "
                                             "(Rogan-Gladen); the interval widens by the calibration's uncertainty.")
    min_agreement: Optional[float] = Field(None, ge=0, le=1, description="Check: agreement with the labels at "
                                                                         "least this (null: recorded, not checked).")


def read_calibration(path: str | Path) -> tuple[list[str], np.ndarray]:
    """Texts and 0/1 labels of a calibration file (InputError naming file and line for a bad label)."""
    texts, labels = [], []
    for row in read_prompts(path, required=("label",), text_column="text"):
        label = str(row["label"]).strip().lower()
        if label not in ("0", "1", "true", "false", "0.0", "1.0"):
            raise InputError(f"{path}:{row['line']}: label must be 0 or 1, got {row['label']!r}")
        texts.append(row["prompt"])
        labels.append(label in ("1", "true", "1.0"))
    y = np.asarray(labels, dtype=bool)
    if y.all() or not y.any():
        raise InputError(f"{path}: a calibration set needs both labels (0 and 1)")
    return texts, y


def calibrate(flag, settings: CalibrationSettings, default: Optional[str] = None) -> Optional[dict]:
    """Measure ``flag`` (texts -> bool array: the audit's decision) on the calibration set; None when there
    is none. Returns the counts, agreement, sensitivity, specificity and the file's sha256."""
    path = settings.file or (builtin(default) if default else None)
    if path is None:
        return None
    texts, y = read_calibration(path)
    pred = np.asarray(flag(texts), dtype=bool)
    tp, fn = int((pred & y).sum()), int((~pred & y).sum())
    tn, fp = int((~pred & ~y).sum()), int((pred & ~y).sum())
    agree = rate(list(pred == y))
    return {"file": str(path), "sha256": sha256_file(path), "n": len(y), "tp": tp, "fn": fn, "tn": tn, "fp": fp,
            "agreement": agree.value, "agreement_ci": [agree.ci_low, agree.ci_high],
            "sensitivity": tp / (tp + fn), "specificity": tn / (tn + fp)}


def corrected_rate(raw: Metric, calibration: Optional[dict], seed: int) -> Optional[Metric]:
    """The Rogan-Gladen correction of a rate ``raw`` (k of n flagged), or None when it cannot be made
    (no calibration, or a scorer no better than chance on it)."""
    if calibration is None or raw.n == 0:
        return None
    k = int(round(raw.value * raw.n))
    try:
        m = rogan_gladen(k, raw.n, tp=calibration["tp"], fn=calibration["fn"], tn=calibration["tn"],
                         fp=calibration["fp"], seed=seed)
    except ValueError:
        return None
    return m  # no item field: a paired comparison tests the raw rate, not the correction


def agreement_check(calibration: Optional[dict], settings: CalibrationSettings, scorer_name: str):
    """The min_agreement check, or None when no bound or no calibration."""
    from fmaudit.reports.content import Check

    if calibration is None or settings.min_agreement is None:
        return None
    return Check.evaluate(f"calibration.agreement", round(calibration["agreement"], 4), settings.min_agreement,
                          "min", "error", f"{scorer_name} agrees with the labels of {Path(calibration['file']).name} "
                                          f"(n={calibration['n']})")
