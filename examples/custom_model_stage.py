"""A model stage of your own: fine-tune a checkpoint on prompt/response pairs, reporting the held-out loss.

It uses the shared training loop (``fmaudit.core.train.fine_tune``: response-only loss, checkpoints, exact
resume, DDP under torchrun) and writes ``OUT/model`` (the new checkpoint) and ``OUT/reports/fit_pairs.json``
(kind model_stage, the input checkpoint and the data file with their sha256 in lineage). Run it again with the
same OUT and it resumes.

    python examples/custom_model_stage.py CHECKPOINT PAIRS.jsonl OUT
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Optional

from pydantic import Field

from fmaudit.core.config import TrainSettings
from fmaudit.core.sources import PairSource
from fmaudit.core.train import fine_tune
from fmaudit.corpus import sha256_file
from fmaudit.reports import now_iso
from fmaudit.reports.content import Check
from fmaudit.tune import register_model_stage
from fmaudit.tune.base import ModelStage, ModelStageSettings, StageOutput
from fmaudit.tune.pairs import read_training_jsonl


class FitPairsSettings(ModelStageSettings):
    data: Path = Field(..., description="JSONL of {prompt, response} pairs.")
    steps: int = Field(20, ge=1, description="Optimizer steps.")
    lr: float = Field(2e-3, gt=0, description="Peak learning rate.")
    every: int = Field(5, ge=1, description="Every how many pairs one is held out for evaluation.")


@register_model_stage
class FitPairs(ModelStage):
    name = "fit_pairs"
    Settings = FitPairsSettings

    def run(self, checkpoint: Path, out: Path, *, policy=None, stop_after: Optional[int] = None,
            progress: bool = False, device: Optional[str] = None) -> StageOutput:
        self.preflight(checkpoint)
        s, started, t0 = self.settings, now_iso(), time.time()
        _, pairs = read_training_jsonl(s.data)
        held = [p for i, p in enumerate(pairs) if i % s.every == 0]
        train = [p for i, p in enumerate(pairs) if i % s.every]
        ts = TrainSettings(init_from=checkpoint, seq_len=64, micro_batch=4, lr=s.lr, warmup_steps=2,
                           max_steps=s.steps, eval_interval=s.steps, log_interval=5, checkpoint_interval=10,
                           seed=s.seed, cpu_threads=1)
        data = {"role": "training_data", "path": str(s.data), "sha256": sha256_file(s.data)}
        result = fine_tune(ts, out, lambda tok, model: PairSource(tok, train, held, ts.seq_len),
                           identity={"data": data["sha256"]}, stop_after=stop_after, progress=progress,
                           device=device)
        if not result.completed:
            return StageOutput(out, completed=False)
        ratio = result.final_val_loss / result.initial_val_loss
        checks = [Check.evaluate("heldout_loss_ratio", ratio, 1.0, "max",
                                 description="held-out response loss after / before: the tune generalised")]
        report = self.make_report(out, checkpoint, started, policy=policy, checks=checks, extra_lineage=[data],
                                  metrics={"initial_val_loss": result.initial_val_loss,
                                           "final_val_loss": result.final_val_loss, "steps": result.steps},
                                  wall_s=time.time() - t0)
        return StageOutput(out, checkpoint=result.model_dir, report=report)


if __name__ == "__main__":
    ckpt, data, out = map(Path, sys.argv[1:4])
    output = FitPairs(FitPairsSettings(data=data)).run(ckpt, out)
    m = output.report["metrics"]
    print(f"{out}: held-out loss {m['initial_val_loss']:.3f} -> {m['final_val_loss']:.3f}; model in "
          f"{output.checkpoint}")
    sys.exit(1 if output.failed_checks else 0)
