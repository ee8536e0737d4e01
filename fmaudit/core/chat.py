"""Chat formatting for fine-tuning and generation: the tokenizer's chat template (fmaudit's tokenizers ship one
with role tokens), or a plain one added when the tokenizer has none.

The added template is plain text, so no new token (and no embedding resize) is needed::

    <bos>User: {prompt}
    Assistant: {response}<eos>
"""

from __future__ import annotations

from dataclasses import dataclass

from fmaudit.errors import InputError

IGNORE = -100  # label of tokens that carry no loss (the value transformers' loss ignores)


@dataclass(frozen=True)
class Encoded:
    """One tokenized sample: ``ids`` and their ``labels`` (-100 where no loss)."""

    ids: list[int]
    labels: list[int]


DEFAULT_TEMPLATE = (
    "{% for m in messages %}"
    "{% if m['role'] == 'user' %}{% if loop.first and bos_token %}{{ bos_token }}{% endif %}"
    "User: {{ m['content'] }}\n"
    "{% elif m['role'] == 'assistant' %}Assistant: {{ m['content'] }}{{ eos_token }}\n{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}Assistant: {% endif %}")


def ensure_chat_template(tokenizer) -> bool:
    """Give ``tokenizer`` :data:`DEFAULT_TEMPLATE` if it has no chat template; True if one was added."""
    if getattr(tokenizer, "chat_template", None):
        return False
    tokenizer.chat_template = DEFAULT_TEMPLATE
    return True


def prompt_ids(tokenizer, prompt: str) -> list[int]:
    """Token ids of a user turn followed by the assistant's generation prompt."""
    ensure_chat_template(tokenizer)
    return _apply(tokenizer, [{"role": "user", "content": prompt}], True)


def _apply(tokenizer, messages: list[dict], generation_prompt: bool) -> list[int]:
    out = tokenizer.apply_chat_template(messages, add_generation_prompt=generation_prompt, tokenize=True)
    if hasattr(out, "keys"):  # transformers may return a BatchEncoding
        out = out["input_ids"]
    return list(out)


def encode_pair(tokenizer, prompt: str, response: str, max_len: int) -> Encoded:
    """A prompt/response pair formatted by the chat template, with loss labels on the response tokens only
    (up to and including its end-of-sequence token). The response is cut to fit ``max_len``; a prompt that
    leaves no room for a response token is an input error."""
    p = prompt_ids(tokenizer, prompt)
    full = _apply(tokenizer, [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}],
                  False)
    eos = tokenizer.eos_token_id
    if full[:len(p)] == p:
        r = full[len(p):]
        if eos is not None and eos in r:
            r = r[:r.index(eos) + 1]  # what follows the end of the turn carries no loss
    else:  # a template whose generation prompt is not a prefix of the full conversation
        r = tokenizer(response, add_special_tokens=False)["input_ids"] + ([eos] if eos is not None else [])
    if len(p) >= max_len:
        raise InputError(f"a prompt of {len(p)} tokens leaves no room for the response in max_len={max_len}: "
                         f"{prompt[:60]!r}")
    ids = (p + r)[:max_len]
    return Encoded(ids, [IGNORE] * len(p) + ids[len(p):])


def pad_id(tokenizer) -> int:
    for tid in (tokenizer.pad_token_id, tokenizer.eos_token_id, 0):
        if tid is not None:
            return tid
    return 0
