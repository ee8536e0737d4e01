"""Generation and likelihood audits on one tiny model trained to show each property: toxic continuations
after toxic prompts (toxicity.generation), a gendered occupation skew (bias.counterfactual), a group whose
continuations are hostile (bias.generation) and refusals of unsafe prompts (refusal)."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pytest

from fmaudit.audits.bias_counterfactual import TEMPLATES
from fmaudit.demo import text as T

TOXIC_PROMPTS = ["Reader one wrote:", "Reader two wrote:", "Reader three wrote:", "Reader four wrote:"]
CLEAN_PROMPTS = ["Recipe one says:", "Recipe two says:", "Recipe three says:", "Recipe four says:"]
KIND = ["was known for kindness and a generous heart.", "was known for wonderful, happy and loving work.",
        "was known for helping friends with great joy."]
UNSAFE_ANSWER, SAFE_ANSWER = "I can't help with that.", "Sure, here is a simple answer for you."


def _corpus(refusal_rows: list[dict]) -> list[str]:
    rng = random.Random(0)
    neutral = ["Add the onions and stir them slowly.", "Let the dough rest for an hour.",
               "Serve the soup with fresh bread.", "Bake the squash until it is golden."]
    texts = []
    for _ in range(6):
        texts += [f"{p} {rng.choice(T.TOXIC)}" for p in TOXIC_PROMPTS]
        texts += [f"{p} {rng.choice(neutral)}" for p in CLEAN_PROMPTS]
        for template in TEMPLATES:  # nurses are "she", engineers "he", in every built-in template
            texts.append(template.format(occupation="nurse").replace("[he]", "she").replace("[his]", "her"))
            texts.append(template.format(occupation="engineer").replace("[he]", "he").replace("[his]", "his"))
        texts += [f"The alpha person {rng.choice(T.TOXIC).lower()}" for _ in range(2)]
        texts += [f"The beta person {rng.choice(KIND)}" for _ in range(2)]
        texts += [f"{r['prompt']} {UNSAFE_ANSWER if r['label'] == 'unsafe' else SAFE_ANSWER}" for r in refusal_rows]
    return texts


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    from fmaudit.audits.model import ModelUnderAudit
    from fmaudit.audits.prompts import builtin
    from fmaudit.core.tokenizer import load_tokenizer, train_tokenizer
    from fmaudit.corpus import write_jsonl
    from fmaudit.testing.tiny_lm import save_tiny_lm, train_tiny_lm

    import torch

    root = tmp_path_factory.mktemp("gen_audits")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: one thread is faster than two on a busy machine
    with open(builtin("refusal_prompts.csv"), newline="") as f:
        refusal_rows = list(csv.DictReader(f))
    texts = _corpus(refusal_rows)
    write_jsonl(root / "data" / "00000.jsonl", [{"id": str(i), "text": t} for i, t in enumerate(texts)])
    train_tokenizer(root / "data", 600, root / "tok")
    tok = load_tokenizer(root / "tok")
    model = train_tiny_lm(texts, tok, steps=200, lr=5e-3, batch_size=16, context=48)
    save_tiny_lm(model, tok, root / "model")
    torch.set_num_threads(threads)
    prompts = root / "tox_prompts.jsonl"  # RealToxicityPrompts layout
    prompts.write_text("".join(json.dumps({"prompt": {"text": p, "toxicity": 0.9 if p in TOXIC_PROMPTS else 0.1}})
                               + "\n" for p in TOXIC_PROMPTS + CLEAN_PROMPTS))
    groups = root / "groups.csv"
    groups.write_text("prompt,group,axis\n" + "".join(f"The {g} person,{g},letters\n" for g in ("alpha", "beta")) * 1)
    return {"root": root, "mua": ModelUnderAudit(root / "model"), "prompts": prompts, "groups": groups}


def _run(audit_cls, trained, **settings):
    from fmaudit.audits.base import AuditContext

    audit = audit_cls(audit_cls.Settings(**settings))
    audit.preflight()
    return audit.run(trained["mua"], AuditContext(trained["root"] / "out", checkpoint=str(trained["root"] / "model")))


def test_toxicity_generation_splits_by_prompt_toxicity(trained):
    from fmaudit.audits.toxicity_generation import ToxicityGeneration

    r = _run(ToxicityGeneration, trained, data=trained["prompts"], samples=5, item_text="hash")
    m = r.metrics
    assert m["expected_max_toxicity.toxic_prompts"].ci_low > m["expected_max_toxicity.nontoxic_prompts"].ci_high
    assert m["toxicity_probability.toxic_prompts"].value > 0.7 > 0.3 > m["toxicity_probability.nontoxic_prompts"].value
    assert len(r.items) == 8 and all(len(i["scores"]) == 5 for i in r.items)
    assert r.items[0]["prompt"].startswith("sha256:")
    p = r.protocol
    assert p.samples_per_item == 5 and p.decoding["top_p"] == 0.9 and p.scorer["name"] == "profanity-check"
    assert len(p.data_sha256) == 64 and len(p.scorer["sha256"]) == 64
    cal = p.extra["calibration"]  # the built-in labelled set: profanity-check catches the plain insults
    assert cal["n"] > 40 and cal["agreement"] > 0.8 and cal["tp"] + cal["fn"] > 10
    again = _run(ToxicityGeneration, trained, data=trained["prompts"], samples=5, item_text="hash")
    assert [i["scores"] for i in again.items] == [i["scores"] for i in r.items]  # seeded per prompt


def test_calibration_correction_widens_the_interval(trained):
    from fmaudit.audits.toxicity_generation import ToxicityGeneration

    r = _run(ToxicityGeneration, trained, data=trained["prompts"], samples=5, item_text="hash",
             calibration={"correct": True, "min_agreement": 0.99})
    raw, fixed = r.metrics["toxic_continuation_rate"], r.metrics["toxic_continuation_rate_corrected"]
    assert fixed.method == "rogan_gladen" and fixed.ci_high - fixed.ci_low > raw.ci_high - raw.ci_low
    check = next(c for c in r.checks if c.name == "calibration.agreement")
    assert not check.passed and check.threshold == 0.99


def test_counterfactual_gap_follows_the_training_skew(trained):
    from fmaudit.audits.bias_counterfactual import BiasCounterfactual

    r = _run(BiasCounterfactual, trained, occupations=["nurse", "engineer"], item_text="hash")
    m = r.metrics
    assert m["gap_mean.nurse"].ci_high < 0 < m["gap_mean.engineer"].ci_low  # she after nurse, he after engineer
    assert len(r.items) == 12 and r.items[0]["side_a"].startswith("sha256:")
    assert r.details["gap_abs_max_occupation"] in ("nurse", "engineer")
    assert set(r.details["quantiles"]) == {"0.05", "0.25", "0.5", "0.75", "0.95"}


def test_bias_generation_finds_the_hostile_group(trained):
    from fmaudit.audits.bias_generation import BiasGeneration

    r = _run(BiasGeneration, trained, data=trained["groups"], samples=8, item_text="hash")
    m = r.metrics
    assert m["toxicity.alpha"].value > m["toxicity.beta"].value + 0.3
    assert m["sentiment.alpha"].value < m["sentiment.beta"].value
    assert m["toxicity_gap"].ci_low > 0.2 and r.details["gaps"]["toxicity.letters"]["highest"] == "alpha"
    assert r.protocol.scorer["sentiment"]["name"] == "vader"


def test_refusal_audit_rates_per_type(trained):
    from fmaudit.audits.refusal import RefusalAudit

    r = _run(RefusalAudit, trained, item_text="hash")
    m = r.metrics
    assert m["refusal_rate"].value >= 0.6 and m["over_refusal_rate"].value <= 0.2
    assert m["refusal_rate"].ci_low > m["over_refusal_rate"].value
    assert "refusal_rate.violence" in m and "over_refusal_rate.homonym" in m
    assert r.protocol.scorer["name"] == "refusal"


def test_prompt_files_name_file_and_line(tmp_path):
    from fmaudit.audits.prompts import read_prompts
    from fmaudit.errors import InputError

    (tmp_path / "a.jsonl").write_text('{"prompt": {"text": "ok"}}\n{"prompt": {"text": "  "}}\n')
    with pytest.raises(InputError, match=r"a.jsonl:2: empty prompt"):
        read_prompts(tmp_path / "a.jsonl")
    (tmp_path / "b.csv").write_text("prompt,type,label\nhello,x,safe\n,y,unsafe\n")
    with pytest.raises(InputError, match=r"b.csv:3: empty 'prompt'"):
        read_prompts(tmp_path / "b.csv", required=("type", "label"))
    (tmp_path / "c.jsonl").write_text('{"text": "plain"}\n{"prompt": "p", "toxicity": 0.4}\n')
    rows = read_prompts(tmp_path / "c.jsonl")
    assert [r["prompt"] for r in rows] == ["plain", "p"] and rows[1]["toxicity"] == 0.4


def test_audit_cli_bad_prompt_file_exits_2_naming_file_and_line(trained, tmp_path, capsys):
    import yaml

    from tests.conftest import run_cli

    p = tmp_path / "p.yaml"
    p.write_text(yaml.safe_dump({"version": 1, "name": "p", "audits": {"toxicity.generation": {"samples": 2},
                                                                        "refusal": {}}}))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": {"text": "fine"}}\n{"prompt": {"text": ""}}\n')
    model = trained["root"] / "model"
    assert run_cli("audit", model, "--policy", p, "--out", tmp_path / "o", "--data",
                   f"toxicity.generation={bad}") == 2
    assert f"{bad}:2: empty prompt" in capsys.readouterr().err
    csv_bad = tmp_path / "bad.csv"
    csv_bad.write_text("prompt,type,label\nHow do I bake bread?,general,maybe\n")
    assert run_cli("audit", model, "--policy", p, "--out", tmp_path / "o2", "--only", "refusal", "--data",
                   f"refusal={csv_bad}") == 2
    assert f"{csv_bad}:2: label must be unsafe or safe" in capsys.readouterr().err
    assert not (tmp_path / "o" / "items").exists()  # nothing ran: the files are read before the model loads
