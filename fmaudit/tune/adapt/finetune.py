"""Light fine-tuning of the encoder before the fairlearn models (``tune.adapt.finetune.blocks > 0``).

The last ``blocks`` transformer blocks below the feature layer (and the final norm when the features are the
last layer's) are unfrozen; a linear head on the pooled features (the same pooling as
:func:`fmaudit.tune.adapt.features.pool`) is trained with them by cross-entropy on the training split's labels,
``epochs`` passes with a seeded shuffle and AdamW. Everything else stays frozen, and the model stays in eval mode
(no dropout), so the same inputs, settings and seed give the same tensors. Only the training split is seen: the
test split's features come from an encoder that never saw its labels.

With ``finetune.lora`` (:mod:`fmaudit.tune.lora`, peft) seeded low-rank adapters on the target modules of every
block train with the head instead, and are then merged into the weights (``merge_and_unload``): the tuned tensors
are the merged weights of the adapted modules.

The tuned tensors (their checkpoint names) are saved beside the chosen model, ``OUT/encoder_finetune.safetensors``,
and their sha256 keys the feature cache; ``fmaudit adapt predict`` applies them to the checkpoint before it
extracts features.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from fmaudit.errors import InputError, PolicyError
from fmaudit.tune.adapt.settings import FeatureSettings, FinetuneSettings

TUNED_FILE = "encoder_finetune.safetensors"


def transformer_blocks(model):
    """``(name, ModuleList)`` of the model's transformer blocks: the ModuleList of ``num_hidden_layers`` modules
    in the base model (``layers`` in Llama, ``h`` in GPT-2)."""
    import torch

    n = model.config.num_hidden_layers
    for name, module in model.base_model.named_modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) == n:
            return name, module
    raise InputError(f"{type(model).__name__}: no list of {n} transformer blocks found to fine-tune")


def tuned_parameters(model, blocks: int, layer: int) -> dict:
    """Parameter name (the model's own, as in its checkpoint) -> parameter, of what ``blocks`` fine-tunes for
    features of hidden-state ``layer``."""
    import torch

    name, stack = transformer_blocks(model)
    n = len(stack)
    top = layer % (n + 1)  # hidden_states[top] is the output of block top - 1 (0: the embeddings)
    if blocks > top:
        raise PolicyError(f"tune.adapt.finetune.blocks: {blocks} blocks are asked for, but the feature layer "
                          f"({layer}) is above only {top} of the model's {n} blocks")
    base = model.base_model
    modules = list(stack[top - blocks:top])
    if top == n:  # the last layer's hidden states pass the final norm: it trains with the last block
        outer = name.split(".")[0]
        modules += [child for child_name, child in base.named_children()
                    if child_name != outer and not isinstance(child, torch.nn.Embedding)]
    wanted = {id(p) for m in modules for p in m.parameters()}
    return {k: p for k, p in sorted(model.named_parameters()) if id(p) in wanted}


def tensors_sha256(tensors: dict) -> str:
    """sha256 of named tensors: names, dtypes, shapes and bytes, in name order."""
    import torch

    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def finetune_encoder(model, tokenizer, texts: Sequence[str], labels: np.ndarray, features: FeatureSettings,
                     settings: FinetuneSettings, seed: int) -> dict:
    """Fine-tune ``model`` in place on ``texts``/``labels`` (0/1); returns the summary the report keeps: blocks,
    tuned parameter count, loss per epoch, train accuracy of the head in the last epoch, and the tuned tensors
    (``tensors``, not for the report) with their sha256."""
    import torch

    from fmaudit.core.evaluate import _pad_id
    from fmaudit.tune.adapt.features import encode, padded_batch, pool

    if settings.lora is not None:
        from fmaudit.tune.lora import add_adapters, check_available

        check_available("tune.adapt.finetune.lora")
        wrapped = add_adapters(model, settings.lora, seed)  # freezes the model; adapters injected in place
        tuned = {k: p for k, p in wrapped.named_parameters() if p.requires_grad}
        adapted = sorted(n for n, m in model.named_modules() if hasattr(m, "lora_A") and hasattr(m, "base_layer"))
    else:
        tuned = tuned_parameters(model, settings.blocks, features.layer)
        for p in model.parameters():
            p.requires_grad_(False)
        for p in tuned.values():
            p.requires_grad_(True)
    torch.manual_seed(seed)
    device = next(model.parameters()).device
    head = torch.nn.Linear(model.config.hidden_size, 2).to(device)
    opt = torch.optim.AdamW([*tuned.values(), *head.parameters()], lr=settings.learning_rate,
                            weight_decay=settings.weight_decay)
    ids = encode(tokenizer, texts, features.max_length)
    y = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    rng, pad = np.random.default_rng(seed), _pad_id(tokenizer)
    losses, correct = [], 0
    model.eval()  # no dropout: a deterministic fine-tune
    for _ in range(settings.epochs):
        order, total, correct = rng.permutation(len(ids)), 0.0, 0
        for start in range(0, len(order), settings.batch_size):
            chunk = order[start:start + settings.batch_size].tolist()
            logits = head(pool(model, *padded_batch(ids, chunk, pad), features))
            target = y[chunk].to(device)
            loss = torch.nn.functional.cross_entropy(logits, target)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(chunk)
            correct += int((logits.argmax(1) == target).sum())
        losses.append(round(total / len(ids), 6))
    for p in tuned.values():
        p.requires_grad_(False)
    trained = int(sum(p.numel() for p in tuned.values()))
    if settings.lora is not None:  # W + (alpha / r) B A folded into W: the saved tensors are the merged weights
        wrapped.merge_and_unload()
        params = dict(model.named_parameters())
        tuned = {f"{n}.weight": params[f"{n}.weight"] for n in adapted}
    tensors = {k: p.detach().cpu().clone() for k, p in tuned.items()}
    return {"method": "lora" if settings.lora is not None else f"last {settings.blocks} block(s)",
            "blocks": settings.blocks, "tuned_parameters": trained, "tuned_tensors": len(tensors),
            "saved_parameters": int(sum(t.numel() for t in tensors.values())),
            "epochs": settings.epochs, "loss_by_epoch": losses,
            "train_accuracy_last_epoch": round(correct / len(ids), 6), "tuned_sha256": tensors_sha256(tensors),
            "tensors": tensors}


def save_tuned(out: str | os.PathLike, tensors: dict) -> Path:
    """Write the tuned tensors to ``out/encoder_finetune.safetensors`` (atomically)."""
    from safetensors.torch import save_file

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / (TUNED_FILE + ".tmp")
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp))
    os.replace(tmp, out / TUNED_FILE)
    return out / TUNED_FILE


def apply_tuned(model, path: str | os.PathLike, expected_sha: str) -> None:
    """Load tuned tensors into ``model`` (their names must be the model's), checking their sha256."""
    import torch
    from safetensors.torch import load_file

    path = Path(path)
    try:
        tensors = load_file(str(path))
    except Exception as e:  # a damaged or missing file
        raise InputError(f"{path}: cannot read the fine-tuned encoder tensors: {e}") from None
    if tensors_sha256(tensors) != expected_sha:
        raise InputError(f"{path}: sha256 of the tensors differs from the one in model.json: the file was changed")
    params = dict(model.named_parameters())
    unknown = sorted(set(tensors) - set(params))
    if unknown:
        raise InputError(f"{path}: tensor {unknown[0]!r} is not a parameter of the checkpoint")
    with torch.no_grad():
        for name, t in tensors.items():
            if params[name].shape != t.shape:
                raise InputError(f"{path}: tensor {name!r} has shape {tuple(t.shape)}, the checkpoint's "
                                 f"{tuple(params[name].shape)}")
            params[name].copy_(t.to(params[name].dtype))
