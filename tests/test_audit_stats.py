"""Audit statistics against independent implementations (scipy) and known properties."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from fmaudit.audits import stats


@pytest.mark.parametrize("k,n", [(0, 10), (3, 10), (50, 100), (99, 100), (7, 7)])
def test_wilson_matches_scipy(k, n):
    ci = sps.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert stats.wilson(k, n) == pytest.approx((ci.low, ci.high), abs=1e-6)
    if k == 0:
        assert stats.wilson(k, n)[0] == 0.0  # exactly: no 1e-17 in a report's interval of a zero rate
    if k == n:
        assert stats.wilson(k, n)[1] == 1.0


def test_rate_and_bootstrap_mean_cover_the_estimate():
    r = stats.rate([True] * 30 + [False] * 70)
    assert r.value == 0.3 and r.ci_low < 0.3 < r.ci_high and r.n == 100 and r.method == "wilson"
    rng = np.random.default_rng(1)
    x = rng.normal(2.0, 1.0, 400)
    m = stats.mean(x)
    se = x.std(ddof=1) / np.sqrt(len(x))
    # The percentile bootstrap of a mean is close to the normal interval.
    assert m.ci_low == pytest.approx(x.mean() - 1.96 * se, abs=0.03)
    assert m.ci_high == pytest.approx(x.mean() + 1.96 * se, abs=0.03)
    assert stats.mean(x) == m  # seeded: same data, same interval


def test_mcnemar_exact_p_value():
    before = [True] * 10 + [False] * 10 + [True] * 20
    after = [False] * 10 + [False] * 8 + [True] * 2 + [True] * 20  # 10 lost, 2 gained
    out = stats.mcnemar(before, after)
    assert (out["b"], out["c"]) == (10, 2)
    assert out["p_value"] == pytest.approx(sps.binomtest(2, 12, 0.5).pvalue)
    assert out["delta"] == pytest.approx(-8 / 40)
    assert stats.mcnemar(before, before)["p_value"] == 1.0


def test_paired_bootstrap_detects_a_shift_and_not_noise():
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, 300)
    shifted = stats.paired_bootstrap(a, a + 0.3 + rng.normal(0, 0.1, 300))
    assert shifted["p_value"] < 0.01 and shifted["ci_low"] > 0.2
    same = stats.paired_bootstrap(a, a)
    assert same["p_value"] == 1.0 and same["delta"] == 0.0


def test_benjamini_hochberg_matches_scipy():
    p = [0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, 0.212, 0.216]
    q, reject = stats.benjamini_hochberg(p, alpha=0.05)
    assert q == pytest.approx(list(sps.false_discovery_control(p, method="bh")))
    assert reject == [x <= 0.05 for x in q] and reject[:2] == [True, True] and not any(reject[2:])


def test_minimum_detectable_effect_shrinks_with_n():
    assert stats.mde_rate(0.5, 100) == pytest.approx((1.959964 + 0.841621) * np.sqrt(0.5 / 100), rel=1e-5)
    assert stats.mde_rate(0.5, 400) == pytest.approx(stats.mde_rate(0.5, 100) / 2)
    assert stats.mde_mean(1.0, 200) < stats.mde_mean(1.0, 50)


def test_rogan_gladen_corrects_and_widens():
    raw = stats.rate([True] * 30 + [False] * 70)
    fixed = stats.rogan_gladen(30, 100, tp=80, fn=20, tn=90, fp=10)
    assert fixed.value == pytest.approx((0.3 + 0.9 - 1) / (0.8 + 0.9 - 1))
    assert fixed.ci_high - fixed.ci_low > raw.ci_high - raw.ci_low
    with pytest.raises(ValueError, match="no better than chance"):
        stats.rogan_gladen(30, 100, tp=5, fn=5, tn=5, fp=5)


def test_ratio_metric_is_exp_of_pooled_mean():
    items = [{"nll": 10.0, "tokens": 5}, {"nll": 3.0, "tokens": 1}, {"nll": 8.0, "tokens": 4}]
    m = stats.from_items(items, "nll", weight_field="tokens", transform="exp")
    assert m.value == pytest.approx(np.exp(21 / 10)) and m.ci_low <= m.value <= m.ci_high and m.n == 3
