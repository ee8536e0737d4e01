"""argparse ``type=`` checks shared by the sub-commands: a bad value is an argparse error (exit 2) naming
the flag, never an internal error deep inside a library."""

from __future__ import annotations

import argparse
import importlib


def positive_int(text: str) -> int:
    """A whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {value}")
    return value


def positive_float(text: str) -> float:
    """A number above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be above 0: {value}")
    return value


def probability(text: str) -> float:
    """A number in (0, 1]."""
    value = positive_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must be at most 1: {value}")
    return value


class RegistryChoices:
    """argparse ``choices`` holding the names of the registry at ``"module:attr"``, looked up only when a value is
    checked or the help is shown: building the parser then imports neither the registry's package nor scans the
    installed packages for plug-ins, and checking a built-in name scans nothing. Set it on the action after
    ``add_argument`` (which would list the choices at once, for the metavar): ``action.choices = ...``."""

    def __init__(self, where: str):
        self.where = where

    def _registry(self):
        module, _, attr = self.where.partition(":")
        return getattr(importlib.import_module(module), attr)

    def __contains__(self, name: object) -> bool:
        return name in self._registry()

    def __iter__(self):
        return iter(self._registry().names())

    def __len__(self) -> int:
        return len(self._registry().names())
