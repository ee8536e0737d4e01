"""PII commands: ``fmaudit pii decrypt`` and ``fmaudit eval pii``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from fmaudit.errors import InputError, UsageError

COMMANDS = ("pii",)  # the sub-commands register() adds, but "eval": a group other areas and plug-ins may extend


def _group(sub, name: str, help_text: str):
    """The sub-command action of ``fmaudit NAME``, created here or reused if another module made it
    (``eval`` is shared by every stage that can be evaluated against ground truth)."""
    parser = sub.choices.get(name) or sub.add_parser(name, help=help_text)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    action = parser.add_subparsers(dest=f"{name}_command", metavar="WHAT")
    action.required = True
    return action


def register(sub) -> None:
    psub = _group(sub, "pii", "PII tools: decrypt text the pii stage encrypted")
    p = psub.add_parser("decrypt", help="restore <ENC:TYPE:...> tokens of the pii stage's encrypt operator")
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="JSONL(.gz) files or folders (e.g. OUT/data)")
    p.add_argument("--out", help="folder for the decrypted JSONL files (same names)")
    p.add_argument("--text", help="decrypt this one string and print it")
    p.add_argument("--key-env", default="FMAUDIT_PII_KEY", help="environment variable holding the key")
    p.add_argument("--key-file", help="file holding the key (when the variable is unset)")
    p.add_argument("--demo-key", action="store_true", help="use the public demo key (synthetic demo data only)")
    p.add_argument("--keep-going", action="store_true", help=(
        "report each token that cannot be decrypted (wrong key or damaged), leave it as it is and go on; "
        "exit 1 if there were any"))
    p.set_defaults(func=cmd_decrypt)

    esub = _group(sub, "eval", "evaluate a finished run against ground truth")
    p = esub.add_parser("pii", help="recall and precision of the pii stage against a demo corpus's truth.jsonl")
    p.add_argument("run", metavar="RUN_DIR", help="output folder of `fmaudit filter` (with pii_ledger/)")
    p.add_argument("--truth", required=True, help="ground-truth JSONL (`fmaudit demo-corpus` writes truth.jsonl)")
    p.add_argument("--min-recall", type=float, help="exit 1 when overall recall is below this")
    p.add_argument("--json", help="also write the figures to this JSON file")
    p.set_defaults(func=cmd_eval_pii)


def cmd_decrypt(args) -> int:
    from fmaudit.corpus import expand_inputs, iter_json_rows, write_jsonl
    from fmaudit.pii.keys import load_key, missing_key_message

    key = load_key(args.key_env, args.key_file, args.demo_key)
    if key is None:
        raise UsageError(missing_key_message(args.key_env, args.key_file, "to decrypt"))
    failures = _Failures(args.keep_going)
    if args.text is not None:
        print(failures.decrypt(args.text, key, "--text")[0])
        return failures.exit_code()
    if not args.inputs or not args.out:
        raise UsageError("give INPUT files or folders and --out, or --text")
    files = expand_inputs(args.inputs)
    by_name: dict[str, Path] = {}
    for path in files:
        if path.name in by_name:
            raise UsageError(f"{by_name[path.name]} and {path} would both be written to {Path(args.out) / path.name}; "
                             f"decrypt one folder per --out")
        by_name[path.name] = path
    total = 0
    for path in files:
        rows = []
        for n, row in iter_json_rows(path):
            if isinstance(row.get("text"), str):
                row["text"], count = failures.decrypt(row["text"], key, f"{path}:{n}: document {row.get('id')!r}")
                total += count
            rows.append(row)
        write_jsonl(Path(args.out) / path.name, rows)
    print(f"decrypted {total} values -> {args.out}" + (f"; {failures.count} could not be decrypted "
                                                        f"({failures.summary()})" if failures.count else ""))
    return failures.exit_code()


class _Failures:
    """Tokens that cannot be decrypted: the first stops the command (exit 2) unless ``keep_going``, when each is
    reported on stderr, left as it is, counted, and the command exits 1."""

    def __init__(self, keep_going: bool):
        self.keep_going = keep_going
        self.by_why: dict[str, int] = {}

    @property
    def count(self) -> int:
        return sum(self.by_why.values())

    def decrypt(self, text: str, key, where: str):
        import sys

        from fmaudit.pii.cipher import DecryptError
        from fmaudit.pii.operators import decrypt_text

        def failed(error: DecryptError, token: str) -> None:
            self.by_why[error.why] = self.by_why.get(error.why, 0) + 1
            print(f"{where}: {_explain(error, token)}", file=sys.stderr)

        try:
            return decrypt_text(text, key, failed if self.keep_going else None)
        except DecryptError as e:
            raise InputError(f"{where}: {_explain(e, '')} (--keep-going reports every token and goes on)") from None

    def summary(self) -> str:
        return ", ".join(f"{n} {why.replace('_', ' ')}" for why, n in sorted(self.by_why.items()))

    def exit_code(self) -> int:
        return 1 if self.count else 0


def _explain(error, token: str) -> str:
    shown = f" {token[:40]}{'...' if len(token) > 40 else ''}" if token else ""
    if error.why == "wrong_key":
        return f"token{shown} was encrypted with another key ({error}); is it the key the run used?"
    return f"damaged token{shown}: {error}"


def cmd_eval_pii(args) -> int:
    from fmaudit.pii.evaluate import evaluate

    result = evaluate(Path(args.truth), Path(args.run))
    print(f"{'entity type':<16} {'injected':>8} {'recall':>7} {'typed':>7}")
    for t, v in result["recall_by_type"].items():
        print(f"{t:<16} {v['injected']:>8} {v['recall']:>7.3f} {v['typed_recall']:>7.3f}")
    recall = result["recall"]
    print(f"{'overall':<16} {result['injected']:>8} {recall if recall is not None else float('nan'):>7.3f}")
    print(f"\n{'found type':<16} {'found':>8} {'precision':>9}")
    for t, v in result["precision_by_type"].items():
        prec = "-" if v["precision"] is None else f"{v['precision']:.3f}"
        print(f"{t:<16} {v['found']:>8} {prec:>9}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    if args.min_recall is not None and (recall is None or recall < args.min_recall):
        print(f"recall {recall} is below --min-recall {args.min_recall}")
        return 1
    return 0
