"""A filtering job from Python: write a small synthetic corpus, filter it with two stages of the shipped demo
policy, and read the outcome: counts, checks, and where every document went.

    python examples/filter_job.py OUT_DIR
"""

import sys
from pathlib import Path

from fmaudit import reports
from fmaudit.demo.corpus import generate_corpus
from fmaudit.pipeline.runner import run_filter
from fmaudit.policy import load_policy

out = Path(sys.argv[1] if len(sys.argv) > 1 else "out/filter-example")
generate_corpus(out / "input", docs=120, seed=1)  # JSONL corpus plus truth.jsonl (kept apart from corpus/)
policy = load_policy("demo")  # a shipped policy, by name
result = run_filter(policy, [out / "input" / "corpus"], out / "job", stages=["min_length", "toxicity"], workers=1,
                    progress=False)
c = result.counts
print(f"read {c['in']}: kept {c['kept']}, dropped {sum(c['dropped'].values())} {dict(c['dropped'])}, "
      f"quarantined {c['quarantined']}")
r = reports.load(out / "job")
print(r.checks[["stage", "name", "value", "threshold", "passed"]].to_string(index=False))
print("verdict:", "PASSED" if result.summary["passed"] else "FAILED", "- report:", out / "job" / "reports" / "summary.html")
sys.exit(result.exit_code)
