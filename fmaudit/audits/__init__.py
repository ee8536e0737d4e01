"""Checkpoint audits: read-only measurements of a causal-LM checkpoint, judged against the policy.

Audits are registered by name in :data:`AUDITS` and configured in the policy's ``audits:`` section
(``audits: {NAME: {settings}}``); other packages add theirs through the ``fmaudit.audits`` entry-point group.
"""

from __future__ import annotations

from fmaudit.registry import Registry

AUDITS: Registry = Registry("audit", group="fmaudit.audits", builtins={})

register_audit = AUDITS.register
