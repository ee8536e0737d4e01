"""The ``fmaudit`` command: one sub-command per user job.

Each CLI area (a module of this package, listed in :data:`AREAS`, or a plug-in of the ``fmaudit.cli``
entry-point group) adds its sub-commands with ``register(subparsers)`` and lists those it alone adds in
``COMMANDS`` (a job builds only its own area's parsers); a sub-command's function takes the parsed arguments
and returns an exit code. Errors derived from
:class:`~fmaudit.errors.FmauditError` print one clear line and exit with their code (2: usage or
input error; 1: a policy check failed).
"""

from __future__ import annotations

import argparse
import gc
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
    "remedy": "fmaudit.cli.remedy",
    "score": "fmaudit.cli.score",
    "refusal": "fmaudit.cli.refusal",
})


def build_parser(command: Optional[str] = None) -> argparse.ArgumentParser:
    """The ``fmaudit`` parser with every area's sub-commands; given the ``command`` about to run, only the built-in
    area that lists it in its ``COMMANDS``, when one does (building every parser and scanning the installed
    packages for plug-in areas cost each job a few hundredths of a second at start-up)."""
    owner = next((name for name in AREAS.builtins if command in getattr(AREAS.get(name), "COMMANDS", ())), None)
    parser = argparse.ArgumentParser(prog="fmaudit", description="Responsible-AI audit and mitigation for foundation models.")
    parser.add_argument("--version", action="version", version=f"fmaudit {__version__}")
    _add_verbosity(parser, argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in [owner] if owner else AREAS.names():
        AREAS.get(name).register(sub)
    for p in _all_subparsers(parser):  # -v/-q also after the sub-command: fmaudit filter ... -v
        _add_verbosity(p, argparse.SUPPRESS)
    return parser


def _add_verbosity(parser: argparse.ArgumentParser, default) -> None:
    """-v/--verbose and -q/--quiet (those option strings a sub-command does not already use for itself)."""
    taken = parser._option_string_actions
    group = parser.add_mutually_exclusive_group()
    for flags, dest, text in ((("-v", "--verbose"), "verbose", "log what the job does (inputs, shards, timings)"),
                              (("-q", "--quiet"), "quiet", "log errors only")):
        free = [f for f in flags if f not in taken]
        if free:
            group.add_argument(*free, dest=dest, action="store_true", default=default, help=text)


def _all_subparsers(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                yield child
                yield from _all_subparsers(child)


def _suggest(parser: argparse.ArgumentParser, argv: list[str]) -> None:
    """A mistyped sub-command: exit 2 naming the nearest ones (argparse alone lists every choice)."""
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    word = _command_word(argv)
    if word is not None and word not in action.choices:
        import difflib

        near = difflib.get_close_matches(word, list(action.choices), n=3, cutoff=0.5)
        hint = f"; did you mean {' or '.join(repr(n) for n in near)}?" if near else ""
        parser.error(f"unknown command {word!r}{hint} (fmaudit --help lists them)")


def _command_word(argv: list[str]) -> Optional[str]:
    """The sub-command named on the command line (the top level's own options take no value)."""
    return next((a for a in argv if not a.startswith("-")), None)


def run() -> None:
    """The ``fmaudit`` command: :func:`main` as a process of its own, which then exits with its code.

    The cyclic garbage collector looks at its youngest objects every 50,000 allocations instead of 700: a
    command first imports its libraries, whose many objects are long-lived, and the collections that found
    nothing to free were 0.03 to 0.05 s of a small job. The objects left when the command is done (imported
    libraries, policy models, loaded models) are frozen out of the collector: its last collection over them,
    as the interpreter shut down, took 0.13 s of a small job, and a process about to end has no garbage worth
    looking for. atexit handlers still run and objects are still freed; every file fmaudit writes is closed
    before :func:`main` returns."""
    gc.set_threshold(50_000, *gc.get_threshold()[1:])
    code = main()
    gc.freeze()
    raise SystemExit(code)


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_command_word(argv))
    _suggest(parser, argv)
    args = parser.parse_args(argv)
    verbose, quiet = getattr(args, "verbose", False), getattr(args, "quiet", False)
    logging.basicConfig(level=logging.ERROR if quiet else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("fmaudit").setLevel(logging.INFO if verbose else logging.ERROR if quiet else logging.WARNING)
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
