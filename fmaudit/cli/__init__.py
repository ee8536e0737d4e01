"""The ``fmaudit`` command: one sub-command per user job.

Each CLI area (a module of this package, listed in :data:`AREAS`, or a plug-in of the ``fmaudit.cli``
entry-point group) adds its sub-commands with ``register(subparsers)``; a sub-command's function takes the
parsed arguments and returns an exit code. Errors derived from
:class:`~fmaudit.errors.FmauditError` print one clear line and exit with their code (2: usage or
input error; 1: a policy check failed).
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Optional, Sequence

from fmaudit import __version__
from fmaudit.errors import EXIT_INTERNAL, FmauditError
from fmaudit.registry import Registry

# area name -> module with a register(subparsers) function
AREAS: Registry = Registry("CLI area", group="fmaudit.cli", builtins={
    "core": "fmaudit.cli.core",
    "data": "fmaudit.cli.data",
    "cda": "fmaudit.cli.cda",
    "pii": "fmaudit.cli.pii",
    "audit": "fmaudit.cli.audit",
    "adapt": "fmaudit.cli.adapt",
    "report": "fmaudit.cli.report",
    "tune": "fmaudit.cli.tune",
    "explain": "fmaudit.cli.explain",
})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fmaudit", description="Responsible-AI audit and mitigation for foundation models.")
    parser.add_argument("--version", action="version", version=f"fmaudit {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in AREAS.names():
        AREAS.get(name).register(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except FmauditError as e:
        print(f"fmaudit: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("fmaudit: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception:  # a bug, not a failed check: keep it apart from exit 1
        logging.getLogger("fmaudit").exception("internal error (please report it with the traceback)")
        return EXIT_INTERNAL
