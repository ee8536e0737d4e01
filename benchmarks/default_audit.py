"""Time of the full default audit of the demo model: ``fmaudit audit MODEL --policy default``, every audit the
shipped default policy configures, against the issue's budget of 5 minutes on this machine.

The model is the demo's final model (``reports/demo/train/model`` after ``make demo``; ``--model DIR`` for
another, e.g. a ``fmaudit demo --quick --out DIR`` run's ``DIR/train/model``: same architecture, fewer
training steps). The audit runs in this process, as the command runs it, ``--rounds`` times on fresh output
folders (each round loads the model again: nothing is cached between rounds). Per round it records the wall
time, the CPU time of the process (every thread) and the 1-minute load average at the start, since on a
shared machine the wall time measures the neighbours too; per audit, the wall time its report records.

The last line: ``wall_s`` (median over rounds), ``cpu_s`` (median), ``budget_ratio`` (``wall_s`` over the
300 s budget: below 1 is within it), ``cpu_budget_ratio`` (``cpu_s`` over 300 s times the cores torch uses:
the share of the machine's budget the work itself needs, whatever else runs), ``threads_ratio`` (sampling
continuations on torch's default thread count over one thread, interleaved rounds: why the audit of a small
model runs on one thread), ``load1``, and the slowest audit.

    python benchmarks/default_audit.py [--model reports/demo/train/model] [--policy default] [--rounds 1]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

BUDGET_S = 300.0
DEMO_MODEL = Path("reports/demo/train/model")


def one_round(model: Path, policy, out: Path) -> dict:
    from fmaudit.audits.runner import run_audit

    load1 = os.getloadavg()[0]
    wall0, cpu0 = time.perf_counter(), time.process_time()
    summary = run_audit(model, policy, out)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    per_audit = {}
    for report in sorted((out / "reports").glob("*.json")):
        data = json.loads(report.read_text())
        if data.get("kind") == "audit":
            per_audit[data["stage"]] = data.get("timings", {}).get("wall_s", float("nan"))
    return {"wall_s": wall, "cpu_s": cpu, "load1": load1, "per_audit": per_audit, "passed": summary["passed"]}


def threads_ratio(model: Path, rounds: int, prompts: int = 4, samples: int = 25) -> tuple[float, int]:
    """Median over interleaved rounds of (time on torch's default thread count) / (time on one thread) for
    toxicity.generation's sampling of ``prompts`` x ``samples`` continuations: why an audit of a small model on
    CPU runs on one thread (:data:`fmaudit.audits.runner.SMALL_MODEL_PARAMETERS`)."""
    import torch

    from fmaudit.audits.generation import sample_continuations
    from fmaudit.audits.model import ModelUnderAudit
    from fmaudit.audits.prompts import builtin, read_prompts
    from fmaudit.audits.toxicity_generation import ToxicityGenerationSettings

    s = ToxicityGenerationSettings()
    texts = [r["prompt"] for r in read_prompts(builtin("toxicity_prompts.jsonl"))[:prompts]]
    base = ModelUnderAudit(model)
    default = torch.get_num_threads()
    ratios = []
    for _ in range(rounds):
        times = {}
        for n in (default, 1):
            torch.set_num_threads(n)
            mua = ModelUnderAudit(model, model=base.model, tokenizer=base.tokenizer)  # fresh cache
            t0 = time.perf_counter()
            sample_continuations(mua, texts, samples, s.decoding, s.seed, s.batch_size)
            times[n] = time.perf_counter() - t0
        ratios.append(times[default] / times[1])
    torch.set_num_threads(default)
    return statistics.median(ratios), default


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, default=DEMO_MODEL, help="checkpoint folder (default: the demo's model)")
    ap.add_argument("--policy", default="default", help="policy file or shipped name (default: default)")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--thread-rounds", type=int, default=3, help="rounds of the threads comparison (0: skip)")
    args = ap.parse_args()
    if not (args.model / "config.json").is_file():
        raise SystemExit(f"{args.model}: no checkpoint; run `make demo` (or `fmaudit demo --quick --out DIR`) "
                         f"and pass --model DIR/train/model")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch

    from fmaudit.policy import load_policy, resolve_policy_path

    policy = load_policy(resolve_policy_path(args.policy))
    rounds = []
    with tempfile.TemporaryDirectory(prefix="default-audit-") as scratch:
        for r in range(args.rounds):
            res = one_round(args.model, policy, Path(scratch) / f"round-{r}")
            rounds.append(res)
            print(f"round {r}: wall {res['wall_s']:.1f}s, cpu {res['cpu_s']:.1f}s, load {res['load1']:.1f}, "
                  f"checks {'passed' if res['passed'] else 'failed'}", flush=True)
            for name, s in sorted(res["per_audit"].items(), key=lambda kv: -kv[1]):
                print(f"  {name:<24} {s:8.1f}s", flush=True)
    wall = statistics.median(r["wall_s"] for r in rounds)
    cpu = statistics.median(r["cpu_s"] for r in rounds)
    slowest = max(rounds[-1]["per_audit"].items(), key=lambda kv: kv[1])
    threads = torch.get_num_threads()
    ratio, default = threads_ratio(args.model, args.thread_rounds) if args.thread_rounds else (float("nan"), threads)
    print(f"generation on {default} threads / on 1 thread (median of {args.thread_rounds}): {ratio:.2f}")
    print(f"wall_s={wall:.1f} cpu_s={cpu:.1f} budget_ratio={wall / BUDGET_S:.3f} "
          f"cpu_budget_ratio={cpu / (BUDGET_S * threads):.3f} cores={threads} threads_ratio={ratio:.2f} "
          f"load1={statistics.median(r['load1'] for r in rounds):.1f} slowest={slowest[0]}:{slowest[1]:.1f}s")


if __name__ == "__main__":
    main()
