"""The ``refusal`` model stage: ``CKPT -> CKPT2``, refusal-tuned by SFT and/or DPO on the shared training loop,
measured before and after on held-out prompts.

    CKPT2/                          the tuned model (config, safetensors, tokenizer with its chat template)
    CKPT2/reports/refusal.json      the report (kind model_stage; CKPT's sha256 in lineage)
    CKPT2/items/refusal.jsonl       one row per evaluated prompt, before and after (anonymized)
    CKPT2/runs/{sft,dpo}/           the training runs (checkpoints, metrics.jsonl): rerun to resume

DPO is a short loss on the core loop (:class:`fmaudit.core.sources.PreferenceSource`) rather than TRL's
DPOTrainer: the same loop, checkpoints, exact resume and DDP as every other run here, no extra dependency, and
the reference log-probabilities computed once (no reference model kept in memory during training).

torch and transformers are imported inside the methods that use them: a policy check loads this module for
its settings only.
"""

from __future__ import annotations

import json
import random
import shutil
import time
from pathlib import Path
from typing import Optional

from fmaudit.core.config import TrainSettings
from fmaudit.errors import InputError
from fmaudit.reports import now_iso
from fmaudit.tune import register_model_stage
from fmaudit.tune.base import ModelStage, StageOutput
from fmaudit.tune.pairs import read_training_jsonl
from fmaudit.tune.refusal import data as gen
from fmaudit.tune.refusal.inputs import PromptRow, read_prompt_csv
from fmaudit.tune.refusal.perturb import perturb
from fmaudit.tune.refusal.settings import PhaseSettings, RefusalTuneSettings


@register_model_stage
class RefusalTune(ModelStage):
    name = "refusal"
    Settings = RefusalTuneSettings
    description = "refusal fine-tuning (SFT and/or DPO) with adversarial hardening; refusal and over-refusal " \
                  "measured before and after"

    def preflight(self, checkpoint: Optional[Path] = None) -> None:
        """The base checks, and peft installed when the policy asks for LoRA (exit 2 naming the extra)."""
        super().preflight(checkpoint)
        if self.settings.lora is not None:
            from fmaudit.tune.lora import check_available

            check_available(f"model stage {self.name!r} with lora")

    def run(self, checkpoint: Path, out: Path, *, policy=None, stop_after: Optional[int] = None,
            progress: bool = True, device: Optional[str] = None) -> StageOutput:
        s: RefusalTuneSettings = self.settings
        checkpoint, out = Path(checkpoint), Path(out)
        self.preflight(checkpoint)
        started, t0 = now_iso(), time.time()
        plan = self.plan()
        rows = self.eval_rows(plan)
        ppl_texts = ordinary_texts(s)
        from fmaudit.core.checkpoint import checkpoint_sha256

        key = _digest([checkpoint_sha256(checkpoint), [[r.prompt, r.type, r.label] for r in rows], ppl_texts,
                       self.settings.model_dump(mode="json", include={"perturbations", "seed", "max_new_tokens"})])
        before = self._cached(out / "runs" / "before.json", key,
                              lambda: self.evaluate(checkpoint, rows, ppl_texts, device))
        current, phases = checkpoint, {}
        for phase in ("sft", "dpo"):
            if phase not in s.method.split("+"):
                continue
            lora: dict = {}
            result = self.train_phase(phase, current, out / "runs" / phase, plan, stop_after, progress, device, lora)
            if not result.completed:
                return StageOutput(out, completed=False)
            phases[phase] = {"steps": result.steps, "tokens": result.tokens_seen, "tokens_per_s": result.tokens_per_s,
                             "initial_val_loss": result.initial_val_loss, "final_val_loss": result.final_val_loss,
                             **({"lora": lora} if lora else {})}
            current = result.model_dir
        install(current, out)
        after = self.evaluate(out, rows, ppl_texts, device)
        from fmaudit.tune.refusal.report import write_outputs

        report = write_outputs(self, out, checkpoint, started, policy, plan, rows, before, after, phases,
                               wall_s=time.time() - t0)
        return StageOutput(out, checkpoint=out, report=report)

    # -- data -----------------------------------------------------------------------------------------------
    def plan(self) -> dict:
        """Training pairs and triples (and their held-out part), from the user's file or the generator."""
        s = self.settings
        if s.data is not None:
            kind, records = read_training_jsonl(s.data)
            if kind == "pairs" and "dpo" in s.method:
                raise InputError(f"{s.data}: method {s.method} needs preference triples "
                                 "({prompt, chosen, rejected}); this file holds pairs")
            triples = records if kind == "preferences" else []
            pairs = [(p, r) for p, r, *_ in records]  # SFT on a triples file learns the chosen responses
            cut = max(1, len(records) // 10)
            return {"source": str(s.data), "pairs": pairs[cut:], "val_pairs": pairs[:cut], "triples": triples[cut:],
                    "val_triples": triples[:cut], "heldout": []}
        harmful = gen.harmful_examples(s.categories, s.seed)
        train_h, test_h = gen.split(harmful, s.holdout_fraction, s.seed)
        train_b, test_b = gen.split(gen.benign_examples(), s.holdout_fraction, s.seed)
        train_c, test_c = gen.split(gen.contrast_examples(), s.holdout_fraction, s.seed)
        helpful = _weighted(train_b, train_c, s.contrast_share, s.seed)
        mix = gen.training_mix(train_h, helpful, s.safety_fraction, s.examples, s.seed)
        if s.hardening:
            mix = harden(mix, s.perturbations, s.hardening_fraction, s.seed)
        val = (test_h[:16] + test_b[:8] + test_c[:8])
        return {"source": "generated", "pairs": [(e.prompt, e.response) for e in mix],
                "val_pairs": [(e.prompt, e.response) for e in val],
                "triples": gen.preference_triples(mix, s.seed), "val_triples": gen.preference_triples(val, s.seed),
                "heldout": test_h + test_c, "mix": {k: sum(e.kind == k for e in mix)
                                                    for k in ("harmful", "benign", "contrast")},
                "hardened": sum(1 for e in mix if e.category.startswith("perturbed:"))}

    def eval_rows(self, plan: dict) -> list[PromptRow]:
        s = self.settings
        if s.eval_prompts is not None:
            rows = read_prompt_csv(s.eval_prompts)
        else:
            rows = [PromptRow(e.prompt, e.category, "unsafe" if e.unsafe else "safe") for e in plan["heldout"]]
            if not rows:
                raise InputError(f"{s.data}: with your own training data, give eval_prompts (a prompt,type,label "
                                 "CSV) to measure the tune on")
        rng = random.Random(f"eval:{s.seed}")
        picked = []
        for label in ("unsafe", "safe"):
            group = [r for r in rows if r.label == label]
            rng.shuffle(group)
            picked += group[:s.eval_limit]
        return picked

    # -- training -------------------------------------------------------------------------------------------
    def train_phase(self, phase: str, init: Path, run: Path, plan: dict, stop_after, progress, device,
                    lora: Optional[dict] = None):
        """One phase on the core loop from ``init`` into ``run``. With LoRA, adapters are trained on the frozen
        ``init`` and merged into it at the end (``run/merged``, the phase's model); ``lora`` receives their
        settings and parameter counts. DPO's reference log-probabilities are computed once from ``init`` before
        the adapters are added (the base with no adapter: no second model in memory)."""
        from fmaudit.core.sources import PairSource, PreferenceSource
        from fmaudit.core.train import fine_tune

        s = self.settings
        ts = phase_settings(getattr(s, phase), init, s)
        if phase == "sft":
            def source(tok, model):
                return PairSource(tok, plan["pairs"], plan["val_pairs"], s.seq_len)
        else:
            if not plan["triples"]:
                raise InputError("DPO needs preference triples")

            def source(tok, model):
                src = PreferenceSource(tok, plan["triples"], plan["val_triples"] or plan["triples"][:8], s.seq_len,
                                       s.beta, s.rpo_alpha)
                src.prepare(model, s.dpo.micro_batch)
                return src
        data = plan["pairs"] if phase == "sft" else plan["triples"]
        identity = {"phase": phase, "data": _digest(data), "stage": self.settings.model_dump(mode="json")}
        wrap = None
        if s.lora is not None:
            from fmaudit.tune.lora import adapter_wrapper

            wrap = adapter_wrapper(s.lora, s.seed, lora)
        result = fine_tune(ts, run, source, identity=identity, stop_after=stop_after, progress=progress,
                           device=device, wrap_model=wrap)
        if s.lora is not None and result.completed:
            from fmaudit.tune.lora import merge_adapters

            result.model_dir = merge_adapters(init, result.model_dir, run / "merged", device=device)
        return result

    # -- evaluation -----------------------------------------------------------------------------------------
    def evaluate(self, checkpoint: Path, rows: list[PromptRow], ppl_texts: list[str], device) -> dict:
        import torch

        from fmaudit.core.checkpoint import load_checkpoint
        from fmaudit.core.evaluate import perplexity
        from fmaudit.tune.refusal.evaluate import measure, summarize

        s = self.settings
        threads = torch.get_num_threads()
        if s.cpu_threads:
            torch.set_num_threads(s.cpu_threads)
        try:
            model, tok = load_checkpoint(checkpoint, device=device)
            items = measure(model, tok, rows, s.perturbations, s.seed, s.max_new_tokens)
            ppl = perplexity(model, tok, ppl_texts)
        finally:
            torch.set_num_threads(threads)
        return {"items": items, "summary": summarize(items), "perplexity": ppl}

    @staticmethod
    def _cached(path: Path, key: str, compute) -> dict:
        """The before-tune evaluation, kept in the run folder (with the digest of what it measured) so that a
        resumed tune does not redo it."""
        if path.exists():
            saved = json.loads(path.read_text())
            if saved.get("key") == key:
                return saved["value"]
        value = compute()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"key": key, "value": value}))
        tmp.replace(path)
        return value


def phase_settings(p: PhaseSettings, init: Path, s: RefusalTuneSettings) -> TrainSettings:
    return TrainSettings(init_from=init, seq_len=s.seq_len, micro_batch=p.micro_batch, grad_accum=p.grad_accum,
                         lr=p.lr, warmup_steps=min(p.warmup_steps, p.steps), max_steps=p.steps, weight_decay=p.weight_decay,
                         eval_interval=p.steps, eval_batches=4, log_interval=max(1, min(10, p.steps)),
                         checkpoint_interval=p.checkpoint_interval, keep_checkpoints=1, seed=s.seed,
                         cpu_threads=s.cpu_threads, min_lr_ratio=0.1)


def harden(mix: list, perturbations: list[str], fraction: float, seed: int) -> list:
    """``mix`` plus perturbed copies of ``fraction`` of its harmful examples (same refusals), so that the
    refusal does not depend on the request's surface form."""
    rng = random.Random(f"harden:{seed}")
    harmful = [e for e in mix if e.unsafe]
    picked = rng.sample(harmful, round(len(harmful) * fraction)) if perturbations else []
    extra = []
    for i, e in enumerate(picked):
        name = perturbations[i % len(perturbations)]
        extra.append(gen.Example(perturb(e.prompt, name, seed + i), e.response, e.kind, f"perturbed:{name}"))
    out = mix + extra
    rng.shuffle(out)
    return out


def install(model_dir: Path, out: Path) -> None:
    """Copy the final model's files (not its trainer state) to the top of ``out``: CKPT2 is a checkpoint."""
    from fmaudit.core.checkpoint import TRAINER_STATE

    out.mkdir(parents=True, exist_ok=True)
    for f in model_dir.iterdir():
        if f.is_file() and f.name != TRAINER_STATE:
            tmp = out / (f.name + ".tmp")
            shutil.copyfile(f, tmp)
            tmp.replace(out / f.name)


def ordinary_texts(s: RefusalTuneSettings) -> list[str]:
    """The capability check's held-out text: ``perplexity_data``'s documents, or the built-in paragraphs."""
    if s.perplexity_data is None:
        return list(gen.ORDINARY_TEXT)
    from fmaudit.corpus import read_documents

    docs = []
    for doc in read_documents([s.perplexity_data]):
        docs.append(doc.text)
        if len(docs) >= s.perplexity_docs:
            break
    if not docs:
        raise InputError(f"{s.perplexity_data}: no documents for the perplexity check")
    return docs


def _weighted(benign: list, contrast: list, contrast_share: float, seed: int) -> list:
    """A helpful pool with about ``contrast_share`` contrast examples (the smaller pool repeated to fit)."""
    n = max(len(benign), len(contrast)) * 2
    rng = random.Random(f"helpful:{seed}")
    k = round(n * contrast_share)
    pick = (lambda pool, m: [pool[i % len(pool)] for i in range(m)] if pool else [])
    out = pick(contrast, k) + pick(benign, n - k)
    rng.shuffle(out)
    return out


def _digest(records) -> str:
    import hashlib

    return hashlib.sha256(json.dumps(records, sort_keys=True).encode()).hexdigest()
