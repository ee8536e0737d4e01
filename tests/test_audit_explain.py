"""The ``explain`` audit: attributions, counterfactual swaps and influential training documents of a
checkpoint's continuations of probe prompts, in the audit contract (metrics with intervals, items, protocol)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("captum")
pytestmark = pytest.mark.usefixtures("one_thread")
pytest.importorskip("kronfluence")

from fmaudit.audits import AUDITS  # noqa: E402
from fmaudit.audits.base import AuditContext  # noqa: E402
from fmaudit.audits.model import ModelUnderAudit  # noqa: E402
from fmaudit.errors import InputError  # noqa: E402


@pytest.fixture(scope="module")
def ckpt(lm_job, tmp_path_factory):
    """llama-tiny trained 60 steps on the lm_job corpus, saved as a checkpoint."""
    from fmaudit.core.tokenizer import load_tokenizer
    from fmaudit.testing.tiny_lm import save_tiny_lm, train_tiny_lm

    tok = load_tokenizer(lm_job["tokenizer"])
    model = train_tiny_lm([d["text"] for d in lm_job["docs"][:60]], tok, steps=60, lr=5e-3)
    return save_tiny_lm(model, tok, tmp_path_factory.mktemp("explain_audit") / "lm")


@pytest.mark.slow
def test_explain_audit_attributes_probe_prompts_and_ranks_training_documents(ckpt, lm_job, tmp_path):
    from fmaudit.audits.runner import write_result

    cls = AUDITS.get("explain")
    settings = cls.Settings(prompts=["the cat sat on the", "she ran near the old"], max_new_tokens=4,
                            shapley_samples=2, ig_steps=32, training_data=lm_job["job"], fit_max_documents=40,
                            candidates=12, top_k=2, max_length=32, checks={
                                "shapley_sampling_abs_delta": {"threshold": 1e-3, "severity": "error"}})
    audit = cls(settings)
    audit.preflight()
    mua = ModelUnderAudit(ckpt)
    ctx = AuditContext(tmp_path, str(ckpt), mua.sha256)
    result = audit.run(mua, ctx)
    assert {"target_logprob", "feature_ablation_abs_delta", "shapley_sampling_abs_delta",
            "integrated_gradients_abs_delta", "counterfactual_abs_logprob_change"} <= set(result.metrics)
    m = result.metrics["shapley_sampling_abs_delta"]
    assert m.n == 2 and m.ci_low <= m.value <= m.ci_high and m.value < 1e-3
    assert [c.passed for c in result.checks] == [True]
    assert len(result.items) == 2 and result.items[1]["counterfactual_changed"]  # "she" has a counterpart
    assert result.items[0]["counterfactual_changed"] is False
    ids = {d["id"] for d in lm_job["docs"]}
    for it in result.items:
        assert len(it["most_influential"]) == 2 and {d for d, _ in it["most_influential"]} <= ids
        assert it["most_influential"][0][1] >= it["least_influential"][0][1]
    assert result.protocol.extra["influence"]["coverage"] <= 24 / 200
    assert all((ctx.reports_dir / p).is_file() for p in result.details["plot_files"])
    path = write_result(audit, result, ctx, None, "run-1", "2026-01-01T00:00:00+00:00", 1.0, mua.describe())
    report = json.loads(path.read_text())
    assert path.name == "explain.json" and report["kind"] == "audit"
    assert report["details"]["influence"]["queries"][0]["candidates"] == 12
    rescored = audit.rescore(result.items, result.protocol.to_json(), ctx)
    assert rescored.metrics["target_logprob"].value == pytest.approx(result.metrics["target_logprob"].value)


def test_explain_audit_preflight_names_bad_settings(tmp_path):
    cls = AUDITS.get("explain")
    with pytest.raises(InputError, match="unknown method 'saliency'"):
        cls(cls.Settings(methods=["saliency"])).preflight()
    with pytest.raises(InputError, match="nope: no such file or folder .audit explain, setting training_data."):
        cls(cls.Settings(training_data=tmp_path / "nope")).preflight()
