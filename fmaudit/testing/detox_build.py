"""Building detoxify-format checkpoints locally (for tests, benchmarks, and offline experiments).

:func:`build_bert_checkpoint` trains a WordPiece tokenizer on the given texts, builds a
``BertForSequenceClassification`` of the given shape (random weights, or weights from ``init``), and
writes a checkpoint that both detoxify's own ``Detoxify(checkpoint=..., huggingface_config_path=...)``
and fmaudit's safe loader read, with the config and tokenizer in ``huggingface_config_path``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Optional, Sequence

JIGSAW_CLASSES = ("toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate")


def train_tokenizer(texts: Sequence[str], vocab_size: int, model_max_length: int):
    """A lower-casing BERT WordPiece tokenizer (``BertTokenizerFast``) trained on ``texts``."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import BertTokenizerFast

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(texts, trainers.WordPieceTrainer(
        vocab_size=vocab_size, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]))
    return BertTokenizerFast(tokenizer_object=tok, model_max_length=model_max_length)


def write_checkpoint(path: str | os.PathLike, model, config_dir: str | os.PathLike, tokenizer_name: str,
                     classes: Sequence[str] = JIGSAW_CLASSES) -> Path:
    """Save ``model`` as a detoxify-format checkpoint whose ``model_type`` is the local ``config_dir``."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    config = {"arch": {"args": {"model_type": str(config_dir), "model_name": type(model).__name__,
                                "tokenizer_name": tokenizer_name, "num_classes": len(classes)}},
              "dataset": {"args": {"classes": list(classes)}}}
    torch.save({"config": config, "state_dict": model.state_dict()}, path)
    return path


def build_bert_checkpoint(out: str | os.PathLike, texts: Sequence[str], *, vocab_size: int = 1000,
                          seed: int = 0, init: Optional[Callable] = None, **bert_config) -> tuple[Path, Path]:
    """Write ``out/model.ckpt`` and ``out/hf/`` (config + tokenizer); returns (checkpoint, config folder).

    ``bert_config`` are ``BertConfig`` fields (defaults: bert-base's shape); ``init(model, tokenizer)``
    may set or train the weights before they are saved.
    """
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    out = Path(out)
    hf = out / "hf"
    max_len = bert_config.get("max_position_embeddings", 512)
    tokenizer = train_tokenizer(texts, vocab_size, max_len)
    tokenizer.save_pretrained(hf)
    config = BertConfig(vocab_size=len(tokenizer), num_labels=len(JIGSAW_CLASSES), **bert_config)
    config.save_pretrained(hf)
    torch.manual_seed(seed)
    model = BertForSequenceClassification(config).eval()
    if init is not None:
        init(model, tokenizer)
    return write_checkpoint(out / "model.ckpt", model.eval(), hf, "BertTokenizerFast"), hf
