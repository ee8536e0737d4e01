"""Model presets and the settings of a training run (the policy's ``train:`` section).

This module imports no torch: policy validation loads it.

    train:
      model: {preset: llama-mini, overrides: {num_hidden_layers: 6}}
      seq_len: 128
      micro_batch: 16
      grad_accum: 1
      lr: 3.0e-3
      max_steps: 300
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import Field, model_validator

from fmaudit.settings import Strict

from fmaudit.core.canaries import CanarySettings

# Llama-style presets: the transformers LlamaConfig fields that set the size. The counts in the names include
# untied embeddings at a 32k vocabulary; llama-tiny (~0.4M parameters at a 2k vocabulary, for tests) and
# llama-mini (~1.3M at a 2k vocabulary, trains in minutes on two CPU cores) are for small tokenizers.
LLAMA_PRESETS: dict[str, dict[str, Any]] = {
    "llama-tiny": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
                       intermediate_size=176),
    "llama-mini": dict(hidden_size=128, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=4,
                       intermediate_size=352),
    "llama-20m": dict(hidden_size=256, num_hidden_layers=6, num_attention_heads=8, num_key_value_heads=8,
                      intermediate_size=704),
    "llama-60m": dict(hidden_size=512, num_hidden_layers=8, num_attention_heads=8, num_key_value_heads=8,
                      intermediate_size=1376),
    "llama-160m": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, num_key_value_heads=12,
                       intermediate_size=3072),
    "llama-410m": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, num_key_value_heads=16,
                       intermediate_size=3328),
    "llama-1b": dict(hidden_size=2048, num_hidden_layers=16, num_attention_heads=32, num_key_value_heads=8,
                     intermediate_size=8192),
    "llama-3b": dict(hidden_size=3072, num_hidden_layers=28, num_attention_heads=24, num_key_value_heads=8,
                     intermediate_size=8192),
}
# GPT-2-style presets: GPT2Config fields.
GPT2_PRESETS: dict[str, dict[str, Any]] = {
    "gpt2-tiny": dict(n_embd=64, n_layer=2, n_head=4),
    "gpt2-small": dict(n_embd=768, n_layer=12, n_head=12),
    "gpt2-medium": dict(n_embd=1024, n_layer=24, n_head=16),
    "gpt2-large": dict(n_embd=1280, n_layer=36, n_head=20),
    "gpt2-xl": dict(n_embd=1600, n_layer=48, n_head=25),
}
PRESETS = {**{k: ("llama", v) for k, v in LLAMA_PRESETS.items()}, **{k: ("gpt2", v) for k, v in GPT2_PRESETS.items()}}


class ModelSettings(Strict):
    """Which model to build: a size preset plus any transformers config field overridden."""

    preset: str = Field("llama-mini", description=f"Size preset; one of: {', '.join(PRESETS)}.")
    overrides: dict[str, Any] = Field(default_factory=dict,
                                      description="transformers config fields set on top of the preset "
                                                  "(e.g. num_hidden_layers, rope_theta, tie_word_embeddings).")

    @model_validator(mode="after")
    def _known_preset(self) -> "ModelSettings":
        if self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; known: {', '.join(PRESETS)}")
        return self

    @property
    def arch(self) -> str:
        return PRESETS[self.preset][0]


class TrainSettings(Strict):
    """Pre-training on the next-token objective: model, batch, optimizer, schedule, evaluation, checkpoints."""

    model: ModelSettings = Field(default_factory=ModelSettings, description="Model preset and config overrides "
                                                                            "(for a random initialisation).")
    init_from: Optional[Path] = Field(None, description="Start from this local transformers causal-LM folder "
                                                        "(loaded safely: safetensors only, no remote code) "
                                                        "instead of a random initialisation of `model`.")
    seq_len: int = Field(512, ge=8, le=131072, description="Tokens per packed training sequence.")
    micro_batch: int = Field(8, ge=1, le=4096, description="Sequences per forward/backward pass on each process.")
    grad_accum: int = Field(1, ge=1, le=4096, description="Micro-batches accumulated per optimizer step on each "
                                                          "process (global batch = micro_batch x grad_accum x processes).")
    global_batch: Optional[int] = Field(None, ge=1, description="Sequences per optimizer step over all processes; "
                                                                "when set, grad_accum is derived from it, so one "
                                                                "policy trains the same way on any process count.")
    lr: float = Field(3e-4, gt=0, le=1.0, description="Peak learning rate of AdamW.")
    min_lr_ratio: float = Field(0.1, ge=0, le=1, description="Final learning rate of the cosine decay, as a fraction of lr.")
    warmup_steps: int = Field(100, ge=0, description="Steps of linear warm-up from 0 to lr.")
    schedule: Literal["cosine", "constant"] = Field("cosine", description="After warm-up: cosine decay to "
                                                                          "min_lr_ratio x lr, or constant.")
    weight_decay: float = Field(0.1, ge=0, le=1, description="AdamW weight decay (not applied to norms and biases).")
    beta1: float = Field(0.9, ge=0, lt=1, description="AdamW beta1.")
    beta2: float = Field(0.95, ge=0, lt=1, description="AdamW beta2.")
    grad_clip: float = Field(1.0, ge=0, description="Clip the global gradient norm to this; 0 turns clipping off.")
    max_steps: Optional[int] = Field(None, ge=1, description="Optimizer steps to train; give this or max_tokens.")
    max_tokens: Optional[int] = Field(None, ge=1, description="Tokens to train on (steps = tokens / tokens per step, "
                                                              "rounded up); give this or max_steps.")
    holdout_fraction: float = Field(0.02, gt=0, lt=0.5, description="Fraction of documents (chosen by id hash) held "
                                                                    "out for evaluation.")
    eval_interval: int = Field(100, ge=1, description="Steps between held-out evaluations (also at the start and end).")
    eval_batches: int = Field(10, ge=1, description="Micro-batches of held-out sequences per evaluation (fewer "
                                                    "if the held-out set is smaller).")
    log_interval: int = Field(10, ge=1, description="Steps between rows of metrics.jsonl (training loss).")
    checkpoint_interval: int = Field(500, ge=1, description="Steps between checkpoints (and one at the end).")
    keep_checkpoints: int = Field(2, ge=1, description="Most recent step checkpoints kept on disk.")
    seed: int = Field(0, ge=0, description="Seed of the initialisation, the data order and dropout.")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto", description="Autocast precision: auto = bf16 on GPUs that support it, else fp32.")
    distributed: Literal["ddp", "fsdp"] = Field("ddp", description="Under torchrun: DistributedDataParallel, or "
                                                                   "FSDP (parameters sharded) for models too large "
                                                                   "for one device.")
    compile: bool = Field(False, description="torch.compile the model (GPU runs).")
    cpu_threads: Optional[int] = Field(None, ge=1, le=1024, description="Torch threads per process on CPU; null: "
                                                                         "torch's default (one per core). On a "
                                                                         "shared machine 1 is often much faster.")
    canaries: Optional[CanarySettings] = Field(None, description="Random secrets planted in the training data at "
                                                                  "chosen repetition counts, for the privacy."
                                                                  "canaries audit (null: none).")
    max_heldout_loss_ratio: float = Field(0.9, gt=0, description="Check: final held-out loss / initial held-out "
                                                                 "loss must be at most this (training made progress).")

    @model_validator(mode="after")
    def _one_length(self) -> "TrainSettings":
        if (self.max_steps is None) == (self.max_tokens is None):
            raise ValueError("give exactly one of max_steps and max_tokens")
        return self

    def accum_steps(self, world_size: int = 1) -> int:
        """Micro-batches per optimizer step on each of ``world_size`` processes."""
        if self.global_batch is None:
            return self.grad_accum
        per_pass = self.micro_batch * world_size
        if self.global_batch % per_pass:
            raise ValueError(f"global_batch {self.global_batch} is not a multiple of micro_batch x processes "
                             f"({self.micro_batch} x {world_size})")
        return self.global_batch // per_pass

    def tokens_per_step(self, world_size: int = 1) -> int:
        return self.seq_len * self.micro_batch * self.accum_steps(world_size) * world_size

    def total_steps(self, world_size: int = 1) -> int:
        if self.max_steps is not None:
            return self.max_steps
        return -(-self.max_tokens // self.tokens_per_step(world_size))
