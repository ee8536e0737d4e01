"""``fmaudit cda-swap``: the full counterfactual of each line on standard input, for checking word lists."""

from __future__ import annotations

import sys

from fmaudit.errors import PolicyError

COMMANDS = ("cda-swap",)  # the sub-commands register() adds


def register(sub) -> None:
    p = sub.add_parser("cda-swap", help="print the counterfactual of each line read on standard input",
                       description="Reads lines on standard input and prints each line's full counterfactual "
                                   "(every axis of the policy's cda section swapped; mode and probability ignored).")
    p.add_argument("--policy", help="policy YAML whose cda section gives the word lists and options "
                                    "(default: the cda stage's defaults)")
    p.set_defaults(func=cmd_cda_swap)


def cmd_cda_swap(args) -> int:
    from fmaudit.stages.cda import CdaSettings, swapper_from_settings

    settings = CdaSettings()
    if args.policy:
        from fmaudit.policy import load_policy

        policy = load_policy(args.policy)
        section = next((s for s in policy.stages if s.name == "cda"), None)
        if section is None:
            raise PolicyError(f"{args.policy}: the policy has no cda stage")
        settings = section.settings
    swapper = swapper_from_settings(settings)
    batch: list[str] = []
    batch_lines = 1 if sys.stdin.isatty() else 256  # answer each typed line at once
    for line in sys.stdin:
        batch.append(line.rstrip("\n"))
        if len(batch) >= batch_lines:
            _write(swapper, batch)
            batch = []
    _write(swapper, batch)
    return 0


def _write(swapper, lines: list[str]) -> None:
    if lines:
        sys.stdout.write("".join(cf.text + "\n" for cf in swapper.counterfactuals(lines)))
        sys.stdout.flush()
