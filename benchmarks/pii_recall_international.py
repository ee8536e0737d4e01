"""Recall and precision of the pii stage on a seeded, labelled set of international texts.

    python benchmarks/pii_recall_international.py [--policy policies/default.yaml] [--cases 300] [--seed 0]

The set (:mod:`fmaudit.testing.pii_international`): English sentences holding names, phone numbers, street
addresses, e-mails, IBANs and card numbers from 20 Faker locales, plus PII-free texts. Prints recall per type
(share of identifying words inside a finding), precision per found type, and how many PII-free texts the stage
would alter; ends with one key=value line.
"""

from __future__ import annotations

import argparse
import json


def main() -> None:
    from fmaudit.policy import load_policy, shipped_policy
    from fmaudit.testing.pii_international import analyze_cases, evaluate, generate_cases

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--policy", default=str(shipped_policy("default")))
    ap.add_argument("--cases", type=int, default=300)
    ap.add_argument("--clean", type=int, default=80)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args()
    settings = next(s.settings for s in load_policy(args.policy).stages if s.name == "pii")
    cases = generate_cases(args.cases, args.clean, args.seed)
    res = evaluate(cases, analyze_cases(settings, cases))
    print(f"{'type':<14} {'words':>6} {'recall':>7}")
    for t, v in res["recall_by_type"].items():
        print(f"{t:<14} {v['words']:>6} {v['recall']:>7.3f}")
    print(f"\n{'found type':<14} {'found':>6} {'precision':>9}")
    for t, v in res["precision_by_type"].items():
        print(f"{t:<14} {v['found']:>6} {v['precision']:>9.3f}")
    print(f"\nPII-free texts altered: {res['altered_clean']} of {res['clean']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)
    r = res["recall_by_type"]
    print(" ".join([f"recall={res['recall']:.3f}"] + [f"recall_{t.lower()}={r[t]['recall']:.3f}" for t in r]
                   + [f"altered_clean={res['altered_clean']}", f"cases={res['cases']}"]))


if __name__ == "__main__":
    main()
