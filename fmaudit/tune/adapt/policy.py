"""The adapt stage's settings from a policy file."""

from __future__ import annotations

from fmaudit.errors import PolicyError


def adapt_settings(path):
    """``(policy, AdaptSettings)`` of a policy file (or shipped policy name) with a ``tune: {adapt: ...}``
    section; PolicyError (exit 2) when the section is missing, since it must name the task's columns."""
    from fmaudit.policy import check_policy_requirements, load_policy

    policy = load_policy(path)
    if "adapt" not in policy.tune:
        raise PolicyError(f"{policy.path}: no tune: {{adapt: ...}} section; it names the task's columns, e.g.\n"
                          "  tune:\n    adapt:\n      columns: {text: text, label: label, sensitive: [gender]}")
    check_policy_requirements(policy)
    return policy, policy.tune["adapt"]
