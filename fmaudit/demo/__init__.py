"""The synthetic demo corpus and the demo run (``fmaudit demo-corpus``, ``fmaudit demo``).

The demo is a list of steps, registered in :data:`STEPS` and run in the order of their ``order`` number.
A step is a function of the :class:`~fmaudit.demo.run.DemoContext`; it does its part, appends the folders of
reports it wrote to ``ctx.reports_dirs`` and its lines to ``ctx.notes``. Plug-ins add steps through the
``fmaudit.demo_steps`` entry-point group.
"""

from __future__ import annotations

from typing import Callable

from fmaudit.registry import Registry

STEPS: Registry[Callable] = Registry("demo step", group="fmaudit.demo_steps", builtins={
    "corpus": "fmaudit.demo.run:corpus_step",
    "filter": "fmaudit.demo.run:filter_step",
    "tokenizer": "fmaudit.demo.train_step:tokenizer_step",
    "raw-model": "fmaudit.demo.compare_step:raw_model_step",
    "train": "fmaudit.demo.train_step:train_step",
    "audit": "fmaudit.demo.audit_step:audit_step",
    "adapt": "fmaudit.demo.adapt_step:adapt_step",
    "explain": "fmaudit.demo.explain_step:explain_step",
    "refusal": "fmaudit.demo.refusal_step:refusal_step",
    "compare": "fmaudit.demo.compare_step:compare_step",
    "trace": "fmaudit.demo.loop_step:trace_step",
    "fix": "fmaudit.demo.loop_step:fix_step",
})


def demo_step(order: int) -> Callable[[Callable], Callable]:
    """Decorator: mark a function as a demo step that runs at position ``order`` (smaller first)."""

    def mark(func: Callable) -> Callable:
        func.order = order
        return func

    return mark


def ordered_steps() -> list[tuple[str, Callable]]:
    """Every demo step, in running order."""
    return sorted(STEPS.items(), key=lambda item: (getattr(item[1], "order", 1000), item[0]))
