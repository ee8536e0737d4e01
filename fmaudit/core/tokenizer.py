"""Byte-level BPE tokenizer trained on a filtered corpus, saved as a transformers ``PreTrainedTokenizerFast``.

Encoding a text adds BOS in front (``<|bos|> text``), as Llama tokenizers do, so the first real token of
a text has a prediction to score; training packs documents as ``<|bos|> doc <|eos|>``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Iterator

from fmaudit.errors import InputError

BOS, EOS, PAD = "<|bos|>", "<|eos|>", "<|pad|>"
ROLES = ["<|system|>", "<|user|>", "<|assistant|>"]
SPECIAL_TOKENS = [BOS, EOS, PAD, *ROLES]
# Turns are "<|role|>\ncontent<|eos|>\n"; a generation prompt ends with "<|assistant|>\n".
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] + eos_token + '\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)


def corpus_texts(data_dir: str | os.PathLike) -> Iterator[str]:
    """The texts of a filtered ``data/`` folder (or of a job folder holding one), streamed."""
    from fmaudit.corpus import read_documents

    path = Path(data_dir)
    if (path / "data").is_dir():
        path = path / "data"
    return (doc.text for doc in read_documents([path]))


def train_tokenizer(texts: Iterable[str] | str | os.PathLike, vocab_size: int, out: str | os.PathLike | None = None,
                    min_frequency: int = 2):
    """Train a byte-level BPE tokenizer on ``texts`` (an iterable, or a data folder streamed document by
    document) and, with ``out``, save it there. Returns the ``PreTrainedTokenizerFast``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    if isinstance(texts, (str, os.PathLike)):
        texts = corpus_texts(texts)
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    if vocab_size < len(alphabet) + len(SPECIAL_TOKENS):
        raise InputError(f"vocab size {vocab_size} is too small: a byte-level BPE needs at least "
                         f"{len(alphabet) + len(SPECIAL_TOKENS)} (256 bytes + {len(SPECIAL_TOKENS)} special tokens)")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=alphabet, show_progress=False)
    counted = _Counting(texts)
    tok.train_from_iterator(counted, trainer=trainer)
    if counted.n == 0:
        raise InputError("no documents to train the tokenizer on")
    bos_id = tok.token_to_id(BOS)
    tok.post_processor = processors.TemplateProcessing(single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B",
                                                       special_tokens=[(BOS, bos_id)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=PAD,
                                   extra_special_tokens=ROLES, chat_template=CHAT_TEMPLATE,
                                   model_max_length=1 << 30, model_input_names=["input_ids", "attention_mask"])
    if out is not None:
        fast.save_pretrained(str(out))
    return fast


class _Counting:
    """Iterates over texts once, counting them (the tokenizers trainer consumes the iterator)."""

    def __init__(self, texts: Iterable[str]):
        self.texts, self.n = texts, 0

    def __iter__(self):
        for text in self.texts:
            self.n += 1
            yield text


def load_tokenizer(path: str | os.PathLike, trust_remote_code: bool = False):
    """``AutoTokenizer.from_pretrained`` on a local folder; InputError naming the folder if it holds none."""
    from transformers import AutoTokenizer

    path = Path(path)
    if not path.is_dir():
        raise InputError(f"{path}: no such tokenizer folder")
    if not any((path / f).exists() for f in ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json")):
        raise InputError(f"{path}: no tokenizer here (no tokenizer.json, tokenizer_config.json or tokenizer.model)")
    try:
        tok = AutoTokenizer.from_pretrained(str(path), trust_remote_code=trust_remote_code, local_files_only=True)
    except Exception as e:  # transformers raises OSError, ValueError, json errors ... for a broken folder
        raise InputError(f"{path}: cannot load the tokenizer: {e}") from None
    if tok.pad_token is None and tok.eos_token is not None:
        tok.pad_token = tok.eos_token
    return tok
