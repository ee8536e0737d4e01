"""Model-building commands: ``tokenizer train``, ``model-size``, ``train``, ``generate``."""

from __future__ import annotations

import json
from pathlib import Path

from fmaudit.cli.argtypes import positive_float, positive_int, probability
from fmaudit.errors import UsageError

COMMANDS = ("tokenizer", "train", "model-size", "generate")  # the sub-commands register() adds


def register(sub) -> None:
    p = sub.add_parser("tokenizer", help="train a byte-level BPE tokenizer")
    tsub = p.add_subparsers(dest="tokenizer_command", metavar="ACTION")
    tsub.required = True
    t = tsub.add_parser("train", help="train on a filtered corpus (streamed) and save a transformers tokenizer")
    t.add_argument("--data", required=True, help="filtered data folder (a filter job's data/, or the job folder)")
    t.add_argument("--vocab-size", required=True, type=int, help="vocabulary size (at least 263)")
    t.add_argument("--min-frequency", type=int, default=2, help="least count of a pair to merge (default 2)")
    t.add_argument("--out", required=True, help="output folder (loadable by AutoTokenizer.from_pretrained)")
    t.set_defaults(func=cmd_tokenizer_train)

    p = sub.add_parser("model-size", help="parameters, FLOPs per token, memory and compute-optimal tokens")
    p.add_argument("--preset", help="size preset (see `fmaudit policy schema`); default llama-mini")
    p.add_argument("--policy", help="use the model of this policy's train: section")
    p.add_argument("--config", help="a transformers config.json, or a checkpoint folder holding one")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="override a config field (JSON value), e.g. --set num_hidden_layers=8")
    p.add_argument("--vocab-size", type=positive_int, default=32000, help="vocabulary size (default 32000)")
    p.add_argument("--seq-len", type=positive_int, help="sequence length (default: the policy's, else 2048)")
    p.add_argument("--micro-batch", type=positive_int, default=1, help="sequences per micro-batch, for activations")
    p.add_argument("--precision", choices=["bf16", "fp16", "fp32"], default="bf16", help="activation precision")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_model_size)

    p = sub.add_parser("train", help="pre-train a model from random initialisation (resumes in the same --out)")
    p.add_argument("--policy", required=True, help="policy YAML with a train: section")
    p.add_argument("--data", required=True, help="filtered data folder (a filter job's data/, or the job folder)")
    p.add_argument("--tokenizer", required=True, help="tokenizer folder (`fmaudit tokenizer train`)")
    p.add_argument("--out", required=True, help="run folder: checkpoints/, model/, metrics.jsonl, reports/")
    p.add_argument("--stop-after", type=int, metavar="STEP", help="stop after this step (with a checkpoint); "
                                                                  "the same command again resumes")
    p.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("generate", help="continue prompts with a checkpoint (any local causal-LM folder)")
    p.add_argument("checkpoint", metavar="CKPT", help="checkpoint folder (e.g. RUN/model)")
    p.add_argument("--prompt", action="append", required=True, help="a prompt (repeat for several)")
    p.add_argument("--max-new-tokens", type=positive_int, default=50)
    p.add_argument("--sample", action="store_true", help="sample (seeded) instead of greedy decoding")
    p.add_argument("--temperature", type=positive_float, default=1.0)
    p.add_argument("--top-k", type=int, default=50)
    p.add_argument("--top-p", type=probability, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--perplexity", action="store_true", help="also print each prompt's perplexity")
    p.add_argument("--device", help="torch device (default: cpu)")
    p.add_argument("--trust-remote-code", action="store_true", help="allow custom model code from the folder")
    p.add_argument("--allow-pickle", action="store_true", help="allow pickle weights (pytorch_model.bin)")
    p.add_argument("--json", action="store_true", help="print one JSON object per prompt")
    p.set_defaults(func=cmd_generate)


def cmd_tokenizer_train(args) -> int:
    from fmaudit.core.data import data_folder
    from fmaudit.core.tokenizer import train_tokenizer

    tok = train_tokenizer(data_folder(args.data), args.vocab_size, args.out, min_frequency=args.min_frequency)
    print(f"{args.out}: byte-level BPE, {len(tok)} tokens (special: {', '.join(tok.all_special_tokens)})")
    return 0


def cmd_model_size(args) -> int:
    from fmaudit.core.config import ModelSettings
    from fmaudit.core.model import build_config
    from fmaudit.core.sizing import human, model_size

    if sum(x is not None for x in (args.preset, args.policy, args.config)) > 1:
        raise UsageError("give one of --preset, --policy and --config")
    overrides = dict(_parse_set(x) for x in args.set)
    seq_len = args.seq_len
    if args.config:
        config = _load_config(Path(args.config))
        for key, value in overrides.items():
            setattr(config, key, value)
        seq_len = seq_len or 2048
    else:
        if args.policy:
            from fmaudit.policy import load_policy

            policy = load_policy(args.policy)
            if policy.model.train is None:
                raise UsageError(f"{args.policy}: no train: section")
            model = policy.model.train.model
            model = model.model_copy(update={"overrides": {**model.overrides, **overrides}})
            seq_len = seq_len or policy.model.train.seq_len
        else:
            try:
                model = ModelSettings(preset=args.preset or "llama-mini", overrides=overrides)
            except ValueError as e:
                raise UsageError(str(e.errors()[0]["msg"]) if hasattr(e, "errors") else str(e)) from None
        seq_len = seq_len or 2048
        config = build_config(model, args.vocab_size, seq_len)
    size = model_size(config, seq_len, args.micro_batch, args.precision)
    if args.json:
        print(json.dumps(size, indent=2))
        return 0
    rows = [
        ("parameters", human(size["parameters"])),
        ("  embedding", human(size["embedding_parameters"])),
        ("  non-embedding", human(size["non_embedding_parameters"])),
        (f"training FLOPs per token (seq {seq_len})", human(size["flops_per_token_train"])),
        ("weights (fp32)", human(size["memory_weights_bytes"], "B")),
        ("gradients (fp32)", human(size["memory_gradients_bytes"], "B")),
        ("AdamW moments (fp32)", human(size["memory_optimizer_bytes"], "B")),
        (f"activations (micro-batch {args.micro_batch}, {args.precision})", human(size["memory_activations_bytes"], "B")),
        ("compute-optimal tokens (20 per parameter)", human(size["compute_optimal_tokens"])),
        ("compute-optimal training FLOPs", human(size["compute_optimal_flops"])),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    return 0


def _parse_set(text: str) -> tuple[str, object]:
    if "=" not in text:
        raise UsageError(f"--set {text!r}: expected FIELD=VALUE")
    key, value = text.split("=", 1)
    try:
        return key.strip(), json.loads(value)
    except json.JSONDecodeError:
        return key.strip(), value


def _load_config(path: Path):
    from transformers import AutoConfig

    from fmaudit.errors import InputError

    folder = path if path.is_dir() else path.parent
    if not (folder / "config.json").is_file():
        raise InputError(f"{path}: no config.json")
    try:
        return AutoConfig.from_pretrained(str(folder), local_files_only=True)
    except Exception as e:
        raise InputError(f"{path}: not a transformers config: {e}") from None


def cmd_train(args) -> int:
    from fmaudit.core.train import train
    from fmaudit.policy import check_model_config, load_policy

    policy = load_policy(args.policy)
    if policy.model.train is None:
        raise UsageError(f"{args.policy}: no train: section")
    check_model_config(policy)  # a model that cannot be built: exit 2 naming the policy line, before any work
    result = train(policy.model.train, args.data, args.tokenizer, args.out, policy=policy,
                   stop_after=args.stop_after, progress=not args.no_progress, device=args.device)
    if not result.completed:
        print(f"{args.out}: stopped after step {result.steps}; run the same command again to resume")
        return 0
    if result.report is None:  # not the main process of a torchrun job
        return 0
    m = result.report["metrics"]
    print(f"{args.out}: {m['steps']} steps, {m['tokens_seen']:,} tokens; held-out loss "
          f"{m['initial_val_loss']:.3f} -> {m['final_val_loss']:.3f} (perplexity {m['final_val_perplexity']:.1f}); "
          f"model in {result.model_dir}")
    failed = [c for c in result.report["checks"] if not c["passed"] and c["severity"] == "error"]
    for c in failed:
        print(f"check failed: {c['name']} = {c['value']} (threshold {c['threshold']}, {c['direction']})")
    return 1 if failed else 0


def cmd_generate(args) -> int:
    from fmaudit.core.checkpoint import load_checkpoint
    from fmaudit.core.evaluate import sequence_logprobs
    from fmaudit.core.generate import generate

    model, tokenizer = load_checkpoint(args.checkpoint, trust_remote_code=args.trust_remote_code,
                                       allow_pickle=args.allow_pickle, device=args.device)
    texts = generate(model, tokenizer, args.prompt, args.max_new_tokens, sample=args.sample,
                     temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, seed=args.seed)
    scores = sequence_logprobs(model, tokenizer, args.prompt) if args.perplexity else [None] * len(texts)
    for prompt, text, score in zip(args.prompt, texts, scores):
        ppl = _ppl(score)
        if args.json:
            print(json.dumps({"prompt": prompt, "continuation": text, **({"perplexity": ppl} if score else {})}))
        else:
            print(f"{prompt}\u2502{text}" + (f"   [prompt perplexity {ppl:.1f}]" if score else ""))
    return 0


def _ppl(score) -> float | None:
    import math

    if not score or not score["tokens"]:
        return None
    return math.exp(-score["logprob"] / score["tokens"])
