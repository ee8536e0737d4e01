"""Model stages: jobs from a checkpoint (plus data) to a new checkpoint or a fitted artefact, each with a report.

Model stages are registered by name in :data:`MODEL_STAGES` and configured in the policy's ``tune:``
section (``tune: {NAME: {settings}}``); other packages add theirs through the ``fmaudit.model_stages``
entry-point group.
"""

from __future__ import annotations

from fmaudit.registry import Registry

MODEL_STAGES: Registry = Registry("model stage", group="fmaudit.model_stages", builtins={
    "adapt": "fmaudit.tune.adapt.stage:AdaptStage",
    "refusal": "fmaudit.tune.refusal.stage:RefusalTune",
})

register_model_stage = MODEL_STAGES.register
