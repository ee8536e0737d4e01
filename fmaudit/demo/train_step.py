"""The model-building steps of ``fmaudit demo``: the tokenizer, then the model trained on the filtered demo
corpus, then a few continuations generated from the start of held-out documents."""

from __future__ import annotations

from fmaudit.core.data import is_held_out
from fmaudit.demo import demo_step

VOCAB_SIZE = 2048
QUICK = dict(max_steps=80, micro_batch=8, warmup_steps=10, eval_interval=20, log_interval=10, checkpoint_interval=80)
PROMPTS = 3
PROMPT_WORDS = 6


@demo_step(order=25)
def tokenizer_step(ctx) -> None:
    """Train the demo's BPE tokenizer on ``ctx.filter_dir/data`` into ``ctx.out/tokenizer``."""
    from fmaudit.core.tokenizer import train_tokenizer

    if ctx.policy.model.train is not None:
        train_tokenizer(ctx.filter_dir / "data", VOCAB_SIZE, ctx.out / "tokenizer")


@demo_step(order=30)
def train_step(ctx) -> None:
    """Train the policy's ``train:`` model on ``ctx.filter_dir/data`` (``--quick``: 80 small steps)."""
    from fmaudit.core.checkpoint import load_checkpoint
    from fmaudit.core.generate import generate
    from fmaudit.core.train import train
    from fmaudit.corpus import read_documents
    from fmaudit.text.scrub import scrub

    policy = ctx.policy
    settings = policy.model.train
    if settings is None:
        ctx.notes.append(f"train: skipped ({ctx.policy_path} has no train: section)")
        return
    if ctx.quick:
        settings = settings.model_copy(update=QUICK)
    data = ctx.filter_dir / "data"
    tokenizer_dir = ctx.out / "tokenizer"
    result = train(settings, data, tokenizer_dir, ctx.out / "train", policy=policy)
    m = result.report["metrics"]
    ctx.notes.append(f"train: {m['parameters']:,}-parameter {settings.model.preset}, {m['steps']} steps, "
                     f"{m['tokens_seen']:,} tokens at {m['tokens_per_s']:,.0f} tokens/s; held-out loss "
                     f"{m['initial_val_loss']:.2f} -> {m['final_val_loss']:.2f} (perplexity "
                     f"{m['final_val_perplexity']:.1f}) -> {result.model_dir}")
    ctx.reports_dirs.append(ctx.out / "train" / "reports")

    held_out = [d.text for d in read_documents([data]) if is_held_out(d.id, settings.holdout_fraction)]
    prompts = [" ".join(text.split()[:PROMPT_WORDS]) for text in held_out[:PROMPTS]]
    model, tokenizer = load_checkpoint(result.model_dir)
    greedy = generate(model, tokenizer, prompts, max_new_tokens=30)
    sampled = generate(model, tokenizer, prompts, max_new_tokens=30, sample=True, temperature=0.8, seed=ctx.seed)
    ctx.notes.append("generate (held-out prompts; greedy | sampled at temperature 0.8):")
    for prompt, g, s in zip(prompts, greedy, sampled):
        ctx.notes.append(f"  {scrub(prompt)} | {scrub(g).strip()}")
        ctx.notes.append(f"  {' ' * len(scrub(prompt))} | {scrub(s).strip()}")
