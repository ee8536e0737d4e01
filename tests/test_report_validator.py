"""The shipped report validator (the schema compiled ahead of time by fastjsonschema) is the schema: generated
from the schema file as it is now, and accepting and refusing the same reports as jsonschema."""

from __future__ import annotations

import copy
import json

import fastjsonschema
import jsonschema
import pytest

from fmaudit.reports import report_validator
from fmaudit.reports.content import Check
from fmaudit.reports.envelope import make_report, new_run_id, now_iso, schema, validate_report, write_report
from fmaudit.reports.schema_code import VALIDATOR_PATH, generate, schema_sha256

SHA = "ab" * 32


def test_shipped_validator_is_generated_from_the_current_schema():
    assert report_validator.SCHEMA_SHA256 == schema_sha256(), \
        "report.schema.json changed: run python -m fmaudit.reports.schema_code"
    if report_validator.VERSION != fastjsonschema.VERSION:
        pytest.skip(f"shipped code is from fastjsonschema {report_validator.VERSION}, {fastjsonschema.VERSION} here")
    assert VALIDATOR_PATH.read_text(encoding="utf-8") == generate()


def _reports() -> list[dict]:
    """Valid reports of each kind, with every optional part filled in somewhere."""
    data = make_report("noop", new_run_id(), now_iso(), inputs=[{"path": "a.jsonl", "sha256": SHA, "bytes": 10}],
                       counts={"in": 3, "kept": 2, "dropped": {"short": 1}, "held": {}, "quarantined": 0, "added": 0},
                       metrics={"drop_fraction": 1 / 3, "name": "x", "ok": True, "none": None},
                       checks=[Check.evaluate("drop_fraction", 1 / 3, 0.5, "max", "error", "share dropped",
                                              ci=(0.1, 0.6))],
                       samples=[{"id": "d1", "text": "hello"}], details={"histograms": {}}, plots=["a.png"],
                       timings={"wall_s": 0.5, "stage_cpu_s": None})
    audit = make_report("perplexity", new_run_id(), now_iso(), kind="audit", metrics={"ppl": 12.5},
                        protocol={"prompt_set": "p.jsonl", "seed": 0},
                        lineage=[{"role": "checkpoint", "path": "ckpt", "sha256": SHA}])
    audit["policy"].update(name="demo", file="demo.yaml", sha256=SHA, section={"audits": {}})
    return [data, audit]


def _mutations(report: dict):
    """``(path, mutated report)``: each field removed, and each value replaced by values of other JSON types."""
    replacements = [None, True, -1, 2.5, "", "x", [], [1], {}, {"extra": 1}]

    def walk(node, path):
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, value in list(items):
            yield path + (key,), value
            yield from walk(value, path + (key,))

    for path, _ in walk(report, ()):
        parent_path, key = path[:-1], path[-1]
        for new in ["<removed>", *replacements]:
            mutated = copy.deepcopy(report)
            parent = mutated
            for part in parent_path:
                parent = parent[part]
            if new == "<removed>":
                del parent[key]
            else:
                parent[key] = copy.deepcopy(new)
            yield path, mutated
    for name, value in (("surprise", 1), ("counts", None)):
        yield (name,), {**copy.deepcopy(report), name: value}


def test_shipped_validator_agrees_with_jsonschema_on_valid_and_broken_reports():
    reference = jsonschema.validators.validator_for(schema())(schema())
    refused = 0
    for report in _reports():
        reference.validate(report)
        validate_report(report)
        for path, mutated in _mutations(report):
            expected = reference.is_valid(mutated)
            try:
                validate_report(mutated)
                got = True
            except fastjsonschema.JsonSchemaValueException:
                got = False
            assert got == expected, f"{path}: jsonschema says valid={expected}, the shipped validator {got}"
            refused += not got
    assert refused > 200  # the mutations do break the schema, many ways


def test_write_report_refuses_a_report_off_schema_and_writes_nothing(tmp_path):
    report = _reports()[0]
    report["counts"]["kept"] = -1
    with pytest.raises(ValueError, match=r"data\.counts\.kept must be bigger than or equal to 0"):
        write_report(tmp_path, report)
    del report["counts"]
    with pytest.raises(ValueError, match="counts"):  # a data stage's report needs its counts
        write_report(tmp_path, report)
    assert list(tmp_path.iterdir()) == []


def test_validating_leaves_the_report_unchanged():
    for report in _reports():
        before = json.dumps(report, sort_keys=True)
        validate_report(report)
        assert json.dumps(report, sort_keys=True) == before
