"""``fmaudit adapt predict DIR FILE``: label a table with the model an ``fmaudit adapt`` run chose."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

from fmaudit.errors import InputError
from fmaudit.tune.adapt.settings import FeatureSettings


def predict_rows(folder: str | os.PathLike, table: str | os.PathLike) -> Iterator[dict]:
    """``{"row": i, "prediction": label value}`` for each row of ``table`` (CSV, JSONL or Parquet with the
    text column, and the sensitive columns when the chosen model needs them), in order.

    The checkpoint named in ``DIR/model.json`` must still hash to the recorded sha256: features from another
    checkpoint would silently mean something else to the classifier.
    """
    from fmaudit.tune.adapt.artefact import load_artefact
    from fmaudit.core.checkpoint import checkpoint_sha256
    from fmaudit.tune.adapt.features import cpu_threads, extract_features
    from fmaudit.tune.adapt.task import read_table

    model, meta = load_artefact(folder)
    ckpt = Path(meta["checkpoint"])
    if not ckpt.is_dir():
        raise InputError(f"{folder}/model.json: checkpoint {ckpt} (the features' source) does not exist")
    if checkpoint_sha256(ckpt) != meta["checkpoint_sha256"]:
        raise InputError(f"{ckpt}: sha256 differs from the one the model was fitted on "
                         f"({meta['checkpoint_sha256'][:12]}...): the checkpoint changed")
    df = read_table(table)
    cols = meta["columns"]
    needed = [cols["text"]] + (cols["sensitive"] if model.needs_sensitive_features else [])
    for c in needed:
        if c not in df.columns:
            why = "text column" if c == cols["text"] else f"sensitive column: model {meta['model']!r} needs it"
            raise InputError(f"{table}: column {c!r} ({why}) does not exist; columns: {', '.join(map(str, df.columns))}")
    texts = df[cols["text"]].tolist()
    for i, t in enumerate(texts):
        if not isinstance(t, str) or not t.strip():
            raise InputError(f"{table}: row {i}: column {cols['text']!r}: text missing or empty")
    cache = meta.get("feature_cache") or str(Path(folder) / "feature_cache")  # the fit's cache: its texts are there
    with cpu_threads(meta.get("cpu_threads")):
        X, _ = extract_features(ckpt, texts, FeatureSettings(**meta["features"]), cache_root=cache,
                                **_tuned_encoder(Path(folder), ckpt, meta.get("finetune")))
    sensitive = None
    if model.needs_sensitive_features:
        sensitive = df[cols["sensitive"]].astype(str).reset_index(drop=True)
    pred = model.predict(X, sensitive_features=sensitive)
    labels = meta["label_values"]
    for i, p in enumerate(pred):
        yield {"row": i, "prediction": labels[int(p)]}


def _tuned_encoder(folder: Path, ckpt: Path, finetune) -> dict:
    """extract_features' model arguments for a fine-tuned encoder: the checkpoint with the run's tuned tensors
    (``DIR/encoder_finetune.safetensors``) in place of its own; {} for frozen features."""
    if not finetune:
        return {}
    from fmaudit.core.checkpoint import load_checkpoint
    from fmaudit.tune.adapt.finetune import apply_tuned

    model, tokenizer = load_checkpoint(ckpt)
    apply_tuned(model, folder / finetune["file"], finetune["tuned_sha256"])
    return {"model": model, "tokenizer": tokenizer, "tuned_sha": finetune["tuned_sha256"]}
