"""Downstream adaptation under fairness constraints (fairlearn): the ``adapt`` model stage.

One module per component: ``settings`` (policy section), ``task`` (table and split), ``features`` (pooled hidden
states, cached), ``methods`` (the estimators fitted side by side), ``metrics`` (per-group figures, disparities,
bootstrap intervals), ``select`` (front and choice), ``artefact`` (saved model), ``predict``, ``report`` and
``stage`` (the run).
"""
