"""Shared fixtures: a small corpus with every kind of malformed record, and an in-process CLI runner."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str) -> int:
    """Run ``fmaudit ARGS`` in this process; returns the exit code."""
    from fmaudit.cli import main

    try:
        return main([str(a) for a in args])
    except SystemExit as e:  # argparse usage errors
        return int(e.code)


def write_policy(path: Path, stages: list[dict], **pipeline) -> Path:
    import yaml

    path.write_text(yaml.safe_dump({"version": 1, "name": path.stem, "pipeline": pipeline, "stages": stages}))
    return path


def long_text(i: int, words: int = 30) -> str:
    return " ".join(f"word{(i * 7 + k) % 97}" for k in range(words)) + f" document number {i}."


@pytest.fixture
def mixed_corpus(tmp_path: Path) -> Path:
    """A folder with a JSONL file holding valid, short and malformed records, and a gzip JSONL file."""
    d = tmp_path / "corpus"
    d.mkdir()
    lines = [
        json.dumps({"id": "a", "text": long_text(1)}).encode(),
        json.dumps({"id": "b", "text": "too short"}).encode(),
        b'{"id": "c", "text": "unterminated',
        json.dumps({"id": "d", "meta": {"x": 1}}).encode(),
        json.dumps({"id": "e", "text": ["not", "a", "string"]}).encode(),
        b'{"id": "f", "text": "bad \xff\xfe bytes"}',
        json.dumps({"id": "g", "text": "  \n "}).encode(),
        json.dumps({"id": "a", "text": long_text(2)}).encode(),
        json.dumps({"id": "h", "text": long_text(3), "url": "https://example.org"}).encode(),
    ]
    (d / "one.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    with gzip.open(d / "two.jsonl.gz", "wt", encoding="utf-8") as f:
        for i in range(10, 20):
            f.write(json.dumps({"id": f"z{i}", "text": long_text(i), "meta": {"n": i}}) + "\n")
    return d


# Valid IBANs (presidio checks them) and e-mail addresses for corpora that exercise the pii stage's encryption.
IBANS = ("DE89370400440532013000", "GB82WEST12345698765432", "FR1420041010050500013M02606")
# A pii stage that needs no NER model run: encrypt e-mail addresses and IBANs with the public demo key.
ENCRYPT_STAGE = {"stage": "pii", "entities": ["EMAIL_ADDRESS", "IBAN_CODE"], "operators": {"DEFAULT": "encrypt"},
                 "demo_key": True, "ledger": "off"}


def make_corpus(path: Path, n: int, start: int = 0, pii: bool = False) -> Path:
    """``n`` documents, every fifth one short; with ``pii``, every third one holds an e-mail address and an IBAN
    (a few values repeated, so equal values meet in different shards)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for i in range(start, start + n):
            text = long_text(i) if i % 5 else "short one"
            if pii and i % 3 == 0:
                text += f" Write to user{i % 7}@example.org, IBAN {IBANS[i % len(IBANS)]}."
            f.write(json.dumps({"id": f"doc-{i}", "text": text}) + "\n")
    return path


def read_tree(root: Path, folders=("data", "dropped", "held", "quarantine")) -> dict[str, bytes]:
    """Every file under the named folders of a job's output, by relative path."""
    out = {}
    for folder in folders:
        for p in sorted((root / folder).rglob("*")) if (root / folder).exists() else []:
            if p.is_file():
                out[p.relative_to(root).as_posix()] = p.read_bytes()
    return out


@pytest.fixture(scope="session")
def lm_job(tmp_path_factory) -> dict:
    """Inputs of the model-building tests: a filter-job-like folder (``data/`` and ``reports/``) of 200 short
    documents drawn from a 24-word vocabulary, and a 320-token byte-level BPE tokenizer trained on it."""
    import random

    from fmaudit.core.tokenizer import train_tokenizer
    from fmaudit.corpus import write_jsonl

    root = tmp_path_factory.mktemp("lm_job")
    words = ("the cat dog sat ran on under a mat park tree river house near with ball red blue big small "
             "old new quick slow").split()
    rng = random.Random(0)
    docs = [{"id": f"doc-{i}", "text": " ".join(rng.choice(words) for _ in range(rng.randint(20, 60))) + "."}
            for i in range(200)]
    write_jsonl(root / "job" / "data" / "00000.jsonl", docs)
    (root / "job" / "reports").mkdir()
    (root / "job" / "reports" / "min_length.json").write_text('{"stage": "min_length"}\n')
    train_tokenizer(root / "job" / "data", 320, root / "tok")
    return {"job": root / "job", "tokenizer": root / "tok", "docs": docs}


@pytest.fixture(scope="session")
def quick_demo(tmp_path_factory) -> dict:
    """One ``fmaudit demo --quick`` run shared by the tests that read its outputs: its folder, exit code and what
    it printed."""
    import contextlib
    import io

    reuse = os.environ.get("FMAUDIT_TEST_DEMO")  # local iteration: a demo folder made earlier by this code
    if reuse:
        return {"out": Path(reuse), "exit_code": 0, "stdout": (Path(reuse) / "demo.log").read_text()
                if (Path(reuse) / "demo.log").exists() else ""}
    out = tmp_path_factory.mktemp("quick_demo") / "demo"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = run_cli("demo", "--quick", "--out", out)
    return {"out": out, "exit_code": code, "stdout": printed.getvalue()}


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a module: on a shared 2-core machine tiny models' many small matmuls thrash with two."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
