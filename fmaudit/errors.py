"""Errors that map to fmaudit's exit codes: 0 pass, 1 a policy check failed, 2 usage or input error
(3: an internal error, i.e. a bug, kept apart from a failed check)."""

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3


class FmauditError(Exception):
    """Base class; `exit_code` is what the CLI exits with."""

    exit_code = EXIT_USAGE


class UsageError(FmauditError):
    """The command line asks for something that cannot be done (bad flag value, missing file)."""


class InputError(FmauditError):
    """An input file (corpus, checkpoint, tokenizer) cannot be used; the message names it."""


class PolicyError(FmauditError):
    """A policy file is invalid; the message names the file, the field and, where known, the line."""
