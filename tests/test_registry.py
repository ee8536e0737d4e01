"""One registry for every kind of component; policies grow tune: and audits: sections; shipped policies by name."""

from __future__ import annotations

import pytest
import yaml

from tests.conftest import run_cli
from fmaudit.errors import InputError, PolicyError
from fmaudit.registry import Registry, UnknownName, check_requires


def test_registry_lazy_builtins_duplicates_and_unknown_names():
    reg = Registry("widget", builtins={"json": "json:dumps"})
    assert reg.names() == ["json"]
    assert reg.get("json")({"a": 1}) == '{"a": 1}'  # imported only now, as "module:attr"

    @reg.register
    class Knob:
        name = "knob"

    assert reg.get("knob") is Knob and reg.names() == ["json", "knob"]
    with pytest.raises(ValueError, match="already registered"):
        reg.register(type("Other", (), {"name": "knob"}))
    with pytest.raises(UnknownName, match=r"unknown widget 'nope'; available: json, knob") as e:
        reg.get("nope")
    assert isinstance(e.value, InputError) and e.value.exit_code == 2


def test_missing_optional_package_names_the_extra():
    class NeedsMissing:
        name = "needs"
        requires = {"fmaudit_no_such_package": "fairness"}

    with pytest.raises(InputError, match=r"needs the package 'fmaudit_no_such_package': pip install 'fmaudit\[fairness\]'"):
        check_requires(NeedsMissing, "audit 'needs'")
    check_requires(type("Fine", (), {"requires": {"json": "x"}}))



def test_policy_check_lists_a_missing_package_as_not_ready(monkeypatch, capsys):
    """A valid policy on a machine without an extra: `policy check` says NOT READY with the pip line and exits 0
    (a plain install can check the shipped policies); `--ready` and the commands that run the stage exit 2."""
    from fmaudit.tune import MODEL_STAGES

    monkeypatch.setattr(MODEL_STAGES.get("adapt"), "requires", {"fmaudit_no_such_package": "fairness"})
    assert run_cli("policy", "check", "demo") == 0
    out = capsys.readouterr().out
    assert "NOT READY:" in out and "tune.adapt needs the package 'fmaudit_no_such_package'" in out
    assert "pip install 'fmaudit[fairness]'" in out
    assert run_cli("policy", "check", "--ready", "demo") == 2
    from fmaudit.policy import check_policy_requirements, load_policy

    with pytest.raises(InputError, match="tune.adapt needs the package"):
        check_policy_requirements(load_policy("demo"))

def test_stage_registry_is_lazy_and_lists_builtins():
    from fmaudit.stages import STAGES

    assert {"cda", "min_length", "noop", "pii", "toxicity"} <= set(STAGES.names())
    with pytest.raises(KeyError, match="unknown stage 'bogus'; available: .*min_length"):
        STAGES.get("bogus")


def test_unknown_audit_and_model_stage_sections_name_file_and_line(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "name": "p", "stages": [],
                                    "tune": {"no_such_stage": {}}, "audits": {"no_such_audit": None}}))
    with pytest.raises(PolicyError) as e:
        from fmaudit.policy import load_policy

        load_policy(path)
    msg = str(e.value)
    assert f"{path}:6: tune.no_such_stage: unknown model stage 'no_such_stage'" in msg
    assert f"{path}:2: audits.no_such_audit: unknown audit 'no_such_audit'" in msg
    assert run_cli("policy", "check", path) == 2


def test_shipped_policies_by_name(capsys):
    assert run_cli("policy", "list") == 0
    listed = capsys.readouterr().out
    assert "default" in listed and "demo" in listed
    assert run_cli("policy", "check", "default", "demo") == 0
    assert run_cli("policy", "check", "no-such-policy") == 2
    assert "available: default, demo" in capsys.readouterr().err


def test_policy_check_finds_packages_of_nested_options(monkeypatch):
    """An option two levels down (tune.adapt.finetune.lora) names its package like a top-level one."""
    import importlib.util

    from fmaudit.policy import check_policy_requirements, policy_from_dict

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a, **k: None if name == "peft" else real(name, *a, **k))
    base = {"name": "p", "stages": []}
    problems: list[str] = []
    check_policy_requirements(policy_from_dict({**base, "tune": {"adapt": {"finetune": {"lora": {"r": 4}}}}}),
                              problems=problems)
    assert any("tune.adapt.finetune.lora needs the package 'peft'" in p for p in problems), problems
    problems.clear()
    check_policy_requirements(policy_from_dict({**base, "tune": {"adapt": {"finetune": {"blocks": 1}}}}),
                              problems=problems)
    assert not any("peft" in p for p in problems)
