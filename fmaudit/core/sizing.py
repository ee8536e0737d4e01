"""How big a model is and what training it costs: parameters, FLOPs per token, memory, compute-optimal tokens."""

from __future__ import annotations

import os

TOKENS_PER_PARAM = 20  # Chinchilla (Hoffmann et al. 2022): compute-optimal tokens ~ 20 x parameters
BYTES = {"fp32": 4, "bf16": 2, "fp16": 2}


def model_size(config, seq_len: int, micro_batch: int = 1, precision: str = "bf16") -> dict:
    """Sizing of the model ``config`` builds, trained on ``seq_len`` sequences with mixed-precision AdamW.

    FLOPs per token follow PaLM (Chowdhery et al. 2022, app. B): 6 x (parameters in matrix multiplies) plus
    12 x layers x hidden x seq_len for attention, forward and backward. Memory assumes fp32 weights, fp32
    gradients and two fp32 AdamW moments; activations per micro-batch follow Korthikanti et al. 2022 (34
    bytes per token, layer and hidden unit at 16 bits, no s^2 term with fused attention) plus the logits.
    """
    import torch
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    embeddings = {id(p) for m in model.modules() if isinstance(m, torch.nn.Embedding) for p in m.parameters()}
    params = {id(p): p for p in model.parameters()}  # tied weights count once
    total = sum(p.numel() for p in params.values())
    embed = sum(p.numel() for i, p in params.items() if i in embeddings)
    matmul = sum(p.numel() for i, p in params.items() if p.dim() >= 2 and i not in embeddings)
    out = model.get_output_embeddings()
    if out is not None and id(out.weight) in embeddings:  # tied head: a matmul with the embedding matrix
        matmul += out.weight.numel()
    layers = config.num_hidden_layers
    hidden = config.hidden_size
    flops_per_token = 6 * matmul + 12 * layers * hidden * seq_len
    act_scale = BYTES.get(precision, 4) / 2
    activations = micro_batch * seq_len * (34 * hidden * layers * act_scale + 2 * 4 * config.vocab_size)
    optimal_tokens = TOKENS_PER_PARAM * total
    return {
        "parameters": total,
        "embedding_parameters": embed,
        "non_embedding_parameters": total - embed,
        "flops_per_token_train": flops_per_token,
        "flops_per_token_forward": flops_per_token // 3,
        "memory_weights_bytes": 4 * total,
        "memory_gradients_bytes": 4 * total,
        "memory_optimizer_bytes": 8 * total,
        "memory_activations_bytes": int(activations),
        "compute_optimal_tokens": optimal_tokens,
        "compute_optimal_flops": flops_per_token * optimal_tokens,
        "seq_len": seq_len,
        "micro_batch": micro_batch,
        "precision": precision,
    }


def estimate_parameters(config) -> int:
    """Parameters the model of ``config`` has, from models of one and two layers built on the meta device (no
    memory, no time), extrapolated over ``num_hidden_layers``: a config asking for a million layers is sized
    without building a million layers."""
    import copy

    import torch
    from transformers import AutoModelForCausalLM

    def count(layers: int | None) -> int:
        c = copy.deepcopy(config)
        if layers is not None:
            c.num_hidden_layers = layers
            if isinstance(getattr(c, "layer_types", None), list):
                c.layer_types = c.layer_types[:layers]
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(c)
        return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())

    layers = getattr(config, "num_hidden_layers", None)
    if not isinstance(layers, int) or isinstance(layers, bool):
        return count(None)
    if layers < 1:
        raise ValueError(f"num_hidden_layers is {layers}; a model needs at least one layer")
    one = count(1)
    if layers == 1:
        return one
    return one + (layers - 1) * (count(2) - one)


def available_memory(device=None) -> int:
    """Bytes free for a model on ``device`` (a torch device or name; None: the CPU's available RAM)."""
    import torch

    device = torch.device(device) if device is not None else torch.device("cpu")
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:  # Linux: what the kernel could hand out without swapping
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def human(n: float, unit: str = "") -> str:
    """1234567 -> '1.23M' (or with a unit: bytes as GiB etc.)."""
    if unit == "B":
        for suffix, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
            if n >= scale:
                return f"{n / scale:.2f} {suffix}"
        return f"{n:.0f} B"
    for suffix, scale in (("E", 1e18), ("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.3g}{suffix}{unit}"
    return f"{n:.3g}{unit}"


# Dense bf16 tensor-core peaks (FLOP/s) of common training GPUs, from the vendors' data sheets.
PEAK_BF16 = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "A10G": 125e12, "L4": 121e12}


def peak_flops(device_name: str) -> float | None:
    """The dense bf16 peak of a GPU named like ``NVIDIA H100 80GB HBM3``, or None (CPUs, unknown GPUs)."""
    import os

    if os.environ.get("FMAUDIT_PEAK_TFLOPS"):
        return float(os.environ["FMAUDIT_PEAK_TFLOPS"]) * 1e12
    for key, peak in PEAK_BF16.items():
        if key in device_name:
            return peak
    return None
