"""Policies: which stages run, in which order, with which settings and thresholds.

A policy is a YAML file validated with pydantic. Any unknown key, wrong type or out-of-range value
raises :class:`~fmaudit.errors.PolicyError` naming the file, the field and its line.

    version: 1
    name: default
    pipeline: {shard_size: 5000}
    stages:
      - stage: min_length
        min_chars: 200
    train: {...}             # fmaudit train
    tune:                    # model stages, by registered name
      refusal: {...}
    audits:                  # checkpoint audits, by registered name
      perplexity: {...}

Policies shipped with fmaudit (package data, ``fmaudit/policies/``) are named by their stem:
``fmaudit policy check default`` (:func:`shipped_policy`, :func:`resolve_policy_path`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fmaudit.core.config import TrainSettings
from fmaudit.errors import PolicyError
from fmaudit.registry import Registry
from fmaudit.settings import StageSettings, Strict
from fmaudit.stages import STAGES
from fmaudit.stages.global_stage import GlobalOrderError, global_block

SHIPPED_DIR = Path(__file__).with_name("policies")


def shipped_policies() -> list[str]:
    """Names of the policies shipped with fmaudit (``fmaudit policy list``)."""
    return sorted(p.stem for p in SHIPPED_DIR.glob("*.yaml"))


def shipped_policy(name: str) -> Path:
    """The file of a shipped policy; PolicyError listing the shipped ones for an unknown name."""
    path = SHIPPED_DIR / f"{name}.yaml"
    if not path.is_file():
        raise PolicyError(f"unknown shipped policy {name!r}; available: {', '.join(shipped_policies())}")
    return path


def resolve_policy_path(arg: str | Path) -> Path:
    """A policy argument as a file: an existing path, else the name of a shipped policy."""
    path = Path(arg)
    if path.exists() or path.suffix in (".yaml", ".yml") or len(path.parts) > 1:
        return path
    return shipped_policy(str(arg))


class PipelineSettings(Strict):
    """How the data pipeline splits and runs the work (not what it decides)."""

    shard_size: int = Field(5000, ge=1, description="Documents per shard: the unit of work, commit and resume.")
    batch_size: int = Field(256, ge=1, description="Documents handed to a stage at once.")
    workers: Optional[int] = Field(None, ge=1, description="Worker processes; null: one per CPU core.")
    samples: int = Field(3, ge=0, le=50, description="Anonymized samples kept per stage and kind for reports.")
    gzip_output: bool = Field(False, description="Write data/, dropped/ and held/ shards as .jsonl.gz.")
    max_chars: Optional[int] = Field(1_000_000, ge=1, description=(
        "Documents with more characters are quarantined (`too_long`) before any stage sees them, so one huge "
        "record cannot stall a worker; null: no limit."))
    max_quarantine_fraction: Optional[float] = Field(0.05, ge=0, le=1, description=(
        "Check: at most this fraction of the records read may be quarantined (malformed); more usually means an "
        "input that is not the corpus (a ground-truth file, a log, another format). null: no check."))
    quarantine_raw: Literal["anonymized", "raw", "omit"] = Field("anonymized", description=(
        "What quarantine/ keeps of a malformed record's raw text: anonymized (through presidio, as report "
        "samples are), raw (verbatim, raw PII included: keep that folder as private as the corpus), or omit "
        "(only source, line, kind and error)."))


class StageEntry(BaseModel):
    """One item of ``stages:``: the stage's registered name plus its settings."""

    model_config = ConfigDict(extra="allow")
    stage: str


class PolicyModel(Strict):
    """The top level of a policy file."""

    version: Literal[1] = Field(1, description="Policy format version.")
    name: str = Field(..., min_length=1, description="A name for reports.")
    description: str = ""
    pipeline: PipelineSettings = Field(default_factory=PipelineSettings)
    stages: list[StageEntry] = Field(default_factory=list, description="Data stages, in the order they run.")
    train: Optional[TrainSettings] = Field(None, description="Pre-training settings (`fmaudit train`).")
    tune: dict[str, Optional[dict[str, Any]]] = Field(default_factory=dict, description=(
        "Model stages by registered name, each with its settings (`fmaudit policy schema` lists them)."))
    audits: dict[str, Optional[dict[str, Any]]] = Field(default_factory=dict, description=(
        "Checkpoint audits by registered name, each with its settings (`fmaudit audit`)."))


@dataclass
class StageSpec:
    name: str
    settings: StageSettings
    section: dict  # the policy text for this stage, as written, for reports


@dataclass
class Policy:
    """A validated policy: the top-level model, the typed stage, model-stage and audit settings, and the file's
    identity."""

    model: PolicyModel
    stages: list[StageSpec]
    path: Optional[Path] = None
    sha256: Optional[str] = None
    tune: dict[str, BaseModel] = field(default_factory=dict)
    audits: dict[str, BaseModel] = field(default_factory=dict)
    root: Optional[yaml.Node] = None  # the composed YAML, for the line of a field checked after loading

    def tune_settings(self, name: str) -> BaseModel:
        """The typed settings of model stage ``name``: the policy's, or the stage's defaults."""
        return self.tune.get(name) or _section_registries()["tune"].get(name).Settings()

    def audit_settings(self, name: str) -> BaseModel:
        """The typed settings of audit ``name``: the policy's, or the audit's defaults."""
        return self.audits.get(name) or _section_registries()["audits"].get(name).Settings()

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def pipeline(self) -> PipelineSettings:
        return self.model.pipeline

    def select(self, names: Optional[list[str]]) -> list[StageSpec]:
        """The policy's stages, or only the named ones (kept in policy order)."""
        if not names:
            return list(self.stages)
        known = [s.name for s in self.stages]
        missing = [n for n in names if n not in known]
        if missing:
            raise PolicyError(f"{self.path or 'policy'}: --stages names {', '.join(missing)}, "
                              f"not in the policy (its stages: {', '.join(known) or 'none'})")
        return [s for s in self.stages if s.name in names]


def check_policy_requirements(policy: Policy, problems: Optional[list[str]] = None) -> None:
    """InputError (exit 2) naming the extra to install when a model stage or audit the policy names needs an
    optional package that is missing; with ``problems``, each such message is appended there instead (what
    ``fmaudit policy check`` lists as NOT READY: the policy is valid, this machine lacks a package)."""
    from fmaudit.errors import InputError
    from fmaudit.registry import check_requires

    for key, chosen in (("tune", policy.tune), ("audits", policy.audits)):
        registry = _section_registries()[key]
        for name, settings in chosen.items():
            where = f"{policy.path or 'policy'}: {key}.{name}"
            # the component's packages, and those of the options its settings turn on, at any depth
            # (tune.refusal.lora, tune.adapt.finetune.lora)
            for component, label in [(registry.get(name), where), *_option_requirements(settings, where)]:
                try:
                    check_requires(component, label)
                except InputError as e:
                    if problems is None:
                        raise
                    problems.append(str(e))


def _option_requirements(settings: BaseModel, where: str):
    """``(options class, label)`` for every nested settings object (set, not None) that declares ``requires``."""
    for field, value in settings:
        if isinstance(value, BaseModel):
            if getattr(value, "requires", None):
                yield type(value), f"{where}.{field}"
            yield from _option_requirements(value, f"{where}.{field}")


def load_policy(path: str | Path) -> Policy:
    """Read and validate a policy file (or a shipped policy, by name)."""
    path = resolve_policy_path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise PolicyError(f"{path}: cannot read policy file: {e.strerror or e}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise PolicyError(f"{path}:{line}: not UTF-8 text (byte {e.start} is 0x{raw[e.start]:02x}); "
                          "save the policy as UTF-8") from None
    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise PolicyError(f"{path}{where}: not valid YAML: {getattr(e, 'problem', e)}") from None
    duplicates = _duplicate_keys(root)
    if duplicates:
        lines = [f"{path}:{line}: {format_loc(loc)}: duplicate key (first at line {first}; YAML would keep only "
                 f"the last)" for loc, first, line in duplicates]
        raise PolicyError("invalid policy:\n  " + "\n  ".join(lines))
    policy = policy_from_dict(data, source=str(path), root=root)
    policy.path, policy.root = path, root
    policy.sha256 = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return policy


def policy_from_dict(data: Any, source: str = "policy", root: Optional[yaml.Node] = None) -> Policy:
    """Validate a policy given as a dict; errors name ``source``, the field and (with ``root``) the line."""
    if not isinstance(data, dict):
        raise PolicyError(f"{source}: a policy is a YAML mapping with 'name' and 'stages'")
    errors: list[tuple[tuple, str]] = []
    try:
        model = PolicyModel.model_validate(data)
    except ValidationError as e:
        errors += [(tuple(err["loc"]), err["msg"]) for err in e.errors()]
        model = None
    specs: list[StageSpec] = []
    raw_stages = data.get("stages") if isinstance(data.get("stages"), list) else []
    seen: set[str] = set()
    for i, entry in enumerate(raw_stages):
        if not isinstance(entry, dict) or not isinstance(entry.get("stage"), str):
            continue  # already reported by PolicyModel
        name = entry["stage"]
        if name in seen:
            errors.append((("stages", i, "stage"), f"stage {name!r} appears twice"))
        seen.add(name)
        try:
            cls = STAGES.get(name)
        except KeyError as e:
            errors.append((("stages", i, "stage"), str(e)))
            continue
        section = {k: v for k, v in entry.items() if k != "stage"}
        try:
            specs.append(StageSpec(name, cls.Settings.model_validate(section), entry))
        except ValidationError as e:
            errors += [(("stages", i) + tuple(err["loc"]), err["msg"]) for err in e.errors()]
    if len(specs) == len(raw_stages):
        try:
            global_block([s.name for s in specs])
        except GlobalOrderError as e:
            errors.append((("stages", e.position, "stage"), str(e)))
    sections = {key: _named_sections(data, key, registry, errors) for key, registry in _section_registries().items()}
    if errors:
        lines = [f"{source}{_line_suffix(root, loc)}: {format_loc(loc)}: {msg}" for loc, msg in errors]
        raise PolicyError("invalid policy:\n  " + "\n  ".join(lines))
    return Policy(model, specs, tune=sections["tune"], audits=sections["audits"])


def _section_registries() -> dict[str, Registry]:
    """The policy sections keyed by component name, and the registry that types each entry."""
    from fmaudit.audits import AUDITS
    from fmaudit.tune import MODEL_STAGES

    return {"tune": MODEL_STAGES, "audits": AUDITS}


def _named_sections(data: dict, key: str, registry: Registry, errors: list) -> dict[str, BaseModel]:
    """Validate ``data[key]`` (a mapping: component name -> settings) against each component's ``Settings``."""
    raw = data.get(key)
    if not isinstance(raw, dict):
        return {}  # absent, or a wrong type PolicyModel already reported
    out: dict[str, BaseModel] = {}
    for name, section in raw.items():
        try:
            cls = registry.get(str(name))
        except KeyError as e:
            errors.append(((key, name), str(e)))
            continue
        try:
            out[name] = cls.Settings.model_validate(section if section is not None else {})
        except ValidationError as e:
            errors += [((key, name) + tuple(err["loc"]), err["msg"]) for err in e.errors()]
    return out


def _duplicate_keys(node: Optional[yaml.Node], loc: tuple = ()) -> list[tuple[tuple, int, int]]:
    """``(field path, first line, repeated line)`` of every mapping key that appears twice."""
    out = []
    if isinstance(node, yaml.MappingNode):
        first: dict = {}
        for key, value in node.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else None
            if name in first:
                out.append((loc + (name,), first[name], key.start_mark.line + 1))
            elif name is not None:
                first[name] = key.start_mark.line + 1
            out += _duplicate_keys(value, loc + (name,))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            out += _duplicate_keys(item, loc + (i,))
    return out


def check_model_config(policy: Policy) -> None:
    """PolicyError ``FILE:LINE: train.model.overrides.FIELD: message`` when the ``train`` section's model
    cannot be built (transformers' validation plus a model on the meta device; no weights are made)."""
    if policy.model.train is None:
        return
    from fmaudit.core.model import ConfigFieldError, build_config

    train = policy.model.train
    try:
        build_config(train.model, vocab_size=256, seq_len=train.seq_len)
    except ConfigFieldError as e:
        source = policy.path or "policy"
        raise PolicyError(f"invalid policy:\n  {source}{_line_suffix(policy.root, e.loc)}: "
                          f"{format_loc(e.loc)}: {e.message}") from None


NOT_CHECKED = ("the corpus, data, tokenizer and checkpoint folders given on the command line (checked when a "
               "command reads them)")


def preflight(policy: Policy, specs: Optional[list[StageSpec]] = None, problems: Optional[list[str]] = None,
              models: bool = False) -> list[str]:
    """What a run of the policy's data stages (or only ``specs``) needs, verified before any work: each spaCy
    model a stage names is installed, and each stage's own preflight (keys, scorer checkpoints, word lists)
    passes; with ``models``, also each model stage's (``tune:``) and audit's (``audits:``) preflight: the
    files, scorers and scorer checkpoints they name (a component whose optional package is missing is left
    to :func:`check_policy_requirements`). Returns what was verified. A need that is not met raises
    InputError ``FILE:LINE: stages[i]...``, or, given a ``problems`` list, is appended to it and checking
    goes on."""
    from fmaudit.errors import InputError
    from fmaudit.text.nlp import resolve_spacy_model

    source = policy.path or "policy"
    checked: list[str] = []

    def attempt(loc: tuple, label: str, check, what: str) -> None:
        try:
            check()
        except InputError as e:
            message = f"{source}{_line_suffix(policy.root, loc)}: {format_loc(loc)}{label}: {e}"
            if problems is None:
                raise InputError(message) from None
            problems.append(message)
        else:
            checked.append(what)

    wanted = None if specs is None else {s.name for s in specs}
    for i, spec in enumerate(policy.stages):
        if wanted is not None and spec.name not in wanted:
            continue
        model = getattr(spec.settings, "spacy_model", None)
        if model:
            attempt(("stages", i, "spacy_model"), "", lambda: resolve_spacy_model(model),
                    f"{spec.name}: spaCy model {model} installed")
        attempt(("stages", i), f" ({spec.name})", STAGES.get(spec.name)(spec.settings).preflight,
                f"{spec.name}: preflight (keys, checkpoints and files it names)")
    if models:
        from fmaudit.registry import check_requires

        for key, chosen in (("tune", policy.tune), ("audits", policy.audits)):
            registry = _section_registries()[key]
            for name, settings in chosen.items():
                cls = registry.get(name)
                try:
                    check_requires(cls)
                except InputError:
                    continue  # reported by check_policy_requirements, with its pip command
                attempt((key, name), "", cls(settings).preflight,
                        f"{key}.{name}: preflight (files, scorers and checkpoints it names)")
    return checked


def format_loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _line_suffix(root: Optional[yaml.Node], loc: tuple) -> str:
    """':LINE' of the deepest YAML node along ``loc`` (the field itself, or its parent if missing)."""
    node, line = root, None
    for part in loc:
        if node is None:
            break
        line = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == part), None)  # missing key: parent's line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            node = None
    if node is not None:
        line = node.start_mark.line + 1
    return f":{line}" if line else ""
