"""Canary planting (train.canaries): every copy lands in the training split at its repetition count, the
record says what was planted, and the token cache follows the canary settings."""

from __future__ import annotations

import numpy as np
import pytest

from fmaudit.core.canaries import CanarySettings, choose_canaries, find_record, read_record


def _count(haystack: np.ndarray, needle: list[int]) -> int:
    n = len(needle)
    windows = np.lib.stride_tricks.sliding_window_view(haystack, n)
    return int((windows == np.asarray(needle, dtype=haystack.dtype)).all(axis=1).sum())


def test_canaries_planted_at_their_counts(lm_job, tmp_path):
    from fmaudit.core.data import tokenize_corpus
    from fmaudit.core.tokenizer import load_tokenizer

    tok = load_tokenizer(lm_job["tokenizer"])
    settings = CanarySettings(length=4, repetitions=[1, 3, 9], per_repetition=2, seed=5)
    meta = tokenize_corpus(lm_job["job"], tok, tmp_path / "tokens", 0.3, canaries=settings)
    train = np.fromfile(tmp_path / "tokens" / "train.bin", dtype=meta["dtype"])
    val = np.fromfile(tmp_path / "tokens" / "val.bin", dtype=meta["dtype"])
    planted, got = read_record(tmp_path / "tokens" / "canaries.json")
    assert planted == settings and len(got) == 6 and len({c["secret"] for c in got}) == 6
    for c in got:
        ids = tok(c["text"], add_special_tokens=True)["input_ids"] + [tok.eos_token_id]
        assert _count(train, ids) == c["repetitions"], c
        assert _count(val, ids) == 0
    assert meta["documents"]["train"] + meta["documents"]["val"] == len(lm_job["docs"]) + 2 * (1 + 3 + 9)
    # copies are spread over the stream, not written as one block
    first = tok(got[-1]["text"], add_special_tokens=True)["input_ids"]
    starts = np.flatnonzero((np.lib.stride_tricks.sliding_window_view(train, len(first)) == first).all(axis=1))
    assert len(starts) == 9 and starts.max() - starts.min() > len(train) / 2
    assert find_record(tmp_path / "model") == tmp_path / "tokens" / "canaries.json"
    # other canary settings re-tokenize; none plants nothing and drops the identity
    meta2 = tokenize_corpus(lm_job["job"], tok, tmp_path / "tokens", 0.3, canaries=settings.model_copy(update={"seed": 6}))
    assert meta2["identity"]["canaries"]["seed"] == 6
    assert read_record(tmp_path / "tokens" / "canaries.json")[1] != got


def test_canary_choice_is_seeded_and_checked():
    a = choose_canaries(CanarySettings(seed=1))
    assert a == choose_canaries(CanarySettings(seed=1)) and a != choose_canaries(CanarySettings(seed=2))
    assert [c["repetitions"] for c in a] == [1, 4, 16, 64]
    assert all(len(c["secret"].split(" ")) == 6 for c in a)
    with pytest.raises(ValueError, match="secret"):
        CanarySettings(format="no placeholder")
    with pytest.raises(ValueError, match="distinct secrets"):
        CanarySettings(alphabet="ab", length=1, repetitions=[1, 2, 3])


def test_policy_canaries_error_names_the_line(tmp_path):
    from tests.conftest import run_cli

    p = tmp_path / "p.yaml"
    p.write_text("version: 1\nname: p\ntrain:\n  max_steps: 3\n  canaries:\n    repetitions: [1, 0]\n")
    assert run_cli("policy", "check", p) == 2
