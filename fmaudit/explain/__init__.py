"""Explaining a checkpoint's outputs: token attribution with captum (:mod:`fmaudit.explain.attribution`) and
influence of training documents with kronfluence (:mod:`fmaudit.explain.influence`).

Both need the ``explain`` extra (``pip install 'fmaudit[explain]'`` plus ``pip install --no-deps
kronfluence==1.0.1``); :func:`require` turns a missing package into an input error (exit 2) that says so.
"""

from __future__ import annotations

import importlib.util

from fmaudit.errors import InputError

INSTALL = {"captum": "pip install 'fmaudit[explain]'",
           "kronfluence": "pip install 'fmaudit[explain]' && pip install --no-deps kronfluence==1.0.1"}


def require(*packages: str) -> None:
    """InputError naming the first of ``packages`` that is not installed, and how to install it."""
    for name in packages:
        if importlib.util.find_spec(name) is None:
            raise InputError(f"explaining a model needs the package '{name}': {INSTALL.get(name, f'pip install {name}')}")
