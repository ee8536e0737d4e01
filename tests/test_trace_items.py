"""Which audit items a trace explains, and what text it asks influence about: fast, no model."""

import hashlib

from fmaudit.audits.stats import Metric
from fmaudit.core.canaries import CanarySettings, write_record
from fmaudit.remedy.locate import canary_texts, failing_items, item_query


def _exposure(items_values):
    return [{"id": f"canary-{i}", "repetitions": 16, "exposure_rank": v} for i, v in enumerate(items_values)]


def test_continuous_check_explains_every_item_beyond_its_threshold_worst_first():
    metric = Metric(12.0, 9.0, 15.0, 5, "sampled_rank_wilson", "exposure_rank", {"repetitions": 16})
    items = _exposure([19.9, 3.0, 11.0, 10.5, 1.0]) + [{"id": "other", "repetitions": 4, "exposure_rank": 30.0}]
    got = failing_items(metric, {"threshold": 10, "direction": "max"}, items)
    assert [it["id"] for it in got] == ["canary-0", "canary-2", "canary-3"]  # the repetitions-4 item is not this metric's


def test_a_mean_over_the_threshold_with_no_single_item_beyond_it_explains_the_worst_fifth():
    metric = Metric(2.5, 2.1, 2.9, 10, "bootstrap", "gap")
    items = [{"id": str(i), "gap": 1.0 + 0.1 * i} for i in range(10)]
    got = failing_items(metric, {"threshold": 2.5, "direction": "max"}, items)
    assert [it["id"] for it in got] == ["9", "8"]


def test_a_ratio_metric_is_not_compared_item_by_item_with_its_threshold():
    metric = Metric(3000.0, 2800.0, 3200.0, 10, "bootstrap", "nll", weight_field="tokens", transform="exp")
    items = [{"id": str(i), "nll": 100.0 + i, "tokens": 20} for i in range(10)]  # every nll "exceeds" 50
    got = failing_items(metric, {"threshold": 50, "direction": "max"}, items)
    assert [it["id"] for it in got] == ["9", "8"]


def test_canary_items_are_traced_by_the_text_their_record_holds(tmp_path):
    settings = CanarySettings(format="the door code is {secret}", repetitions=[4], per_repetition=2, seed=3)
    record = write_record(tmp_path, settings, name="secrets.json")
    assert record.name == "secrets.json"
    from fmaudit.core.canaries import read_record

    canaries = read_record(record)[1]
    sha = lambda c: hashlib.sha256(c["secret"].encode()).hexdigest()
    items = [{"id": canaries[0]["id"], "secret_sha256": sha(canaries[0])},
             {"id": canaries[1]["id"], "secret_sha256": "0" * 64}]  # a record that is not the audited one
    report = {"stage": "privacy.canaries", "protocol": {"data_file": str(record)}}
    texts = canary_texts(report, items)
    assert texts == {canaries[0]["id"]: canaries[0]["text"]}
    assert item_query(items[0], "privacy.canaries", texts) == canaries[0]["text"]
    assert canary_texts({**report, "stage": "perplexity"}, items) == {}
    assert canary_texts({**report, "protocol": {"data_file": str(tmp_path / "gone.json")}}, items) == {}
