"""Refusal fine-tuning: the ``refusal`` model stage (``fmaudit refusal-tune CKPT --policy P --out CKPT2``).

One module per component: ``data`` (the built-in generator), ``perturb`` (adversarial rewrites), ``inputs``
(prompt-set CSV), ``settings`` (policy section), ``evaluate`` (before/after measurement), ``report`` and
``stage`` (the run).
"""
