"""Tamper evidence: ``MANIFEST.json`` lists every artefact of a run folder with its sha256 and size, signed with
HMAC-SHA256 when a key is in the environment (``FMAUDIT_MANIFEST_KEY``).

:func:`verify_manifest` recomputes every hash: files added, removed or changed make a
:class:`ManifestMismatch` (exit 1, a failed check); a damaged manifest, a wrong key or a signature that
does not verify is an :class:`~fmaudit.errors.InputError` (exit 2). The manifest records only a key id
(a hash of the key), never the key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from pathlib import Path
from typing import Optional

from fmaudit.corpus import sha256_file, write_json_atomic
from fmaudit.errors import EXIT_CHECK_FAILED, FmauditError, InputError

MANIFEST_FILE = "MANIFEST.json"
KEY_ENV = "FMAUDIT_MANIFEST_KEY"
FORMAT = "fmaudit-manifest-1"
# Files a run keeps for itself while it works: not artefacts, and free to change after the manifest.
TRANSIENT_SUFFIXES = (".tmp", ".lock")


class ManifestMismatch(FmauditError):
    """The folder's files differ from its manifest (the message names every file)."""

    exit_code = EXIT_CHECK_FAILED


def manifest_key(env: Optional[dict] = None) -> Optional[bytes]:
    """The signing key from the environment, or None (no signature)."""
    value = (env if env is not None else os.environ).get(KEY_ENV)
    if not value:
        return None
    if len(value.encode()) < 16:
        raise InputError(f"{KEY_ENV} holds fewer than 16 bytes: use a longer random key")
    return value.encode()


def key_id(key: bytes) -> str:
    """A public name of the key: the first 16 hex digits of sha256(key)."""
    return hashlib.sha256(b"fmaudit-manifest-key:" + key).hexdigest()[:16]


def artefacts(root: Path, hashed: Optional[dict[str, dict]] = None) -> list[dict]:
    """Every regular file under ``root`` (not the manifest itself or transient files), sorted by path.

    ``hashed``: rows ``{"path", "sha256", "bytes"}`` the caller computed moments ago (a filter job's data
    manifest), by relative path; a file whose size still matches is not read again."""
    rows = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
        rel = path.relative_to(root).as_posix()
        if rel == MANIFEST_FILE or path.name.endswith(TRANSIENT_SUFFIXES):
            continue
        size = path.stat().st_size
        known = (hashed or {}).get(rel)
        sha = known["sha256"] if known is not None and known["bytes"] == size else sha256_file(path)
        rows.append({"path": rel, "sha256": sha, "bytes": size})
    return rows


def _signature(files: list[dict], key: bytes) -> str:
    blob = json.dumps(files, sort_keys=True, separators=(",", ":")).encode()
    return hmac.new(key, blob, hashlib.sha256).hexdigest()


def write_manifest(root: str | os.PathLike, key: Optional[bytes] = None,
                   hashed: Optional[dict[str, dict]] = None) -> dict:
    """Write ``root/MANIFEST.json`` (signed when ``key``, or the environment's key, is given); returns it.
    ``hashed``: see :func:`artefacts`."""
    root = Path(root)
    key = key if key is not None else manifest_key()
    files = artefacts(root, hashed)
    manifest = {"format": FORMAT, "files": files}
    if key is not None:
        manifest["signature"] = {"algorithm": "HMAC-SHA256", "key_id": key_id(key), "value": _signature(files, key)}
    write_json_atomic(root / MANIFEST_FILE, manifest)
    return manifest


def read_manifest(root: Path) -> dict:
    path = root / MANIFEST_FILE
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: no manifest (runs write one; `fmaudit report` writes one too)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{path}: damaged manifest: {e}") from None
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if manifest.get("format") != FORMAT or not isinstance(files, list) or not all(
            isinstance(f, dict) and isinstance(f.get("path"), str) and isinstance(f.get("sha256"), str) for f in files):
        raise InputError(f"{path}: damaged manifest: not an {FORMAT} file list")
    return manifest


def verify_manifest(root: str | os.PathLike, key: Optional[bytes] = None) -> dict:
    """Check ``root`` against its manifest; returns ``{"files": n, "signed": bool}`` when everything matches."""
    root = Path(root)
    manifest = read_manifest(root)
    key = key if key is not None else manifest_key()
    signature = manifest.get("signature")
    signed = False
    if signature is not None:
        if key is None:
            raise InputError(f"{root / MANIFEST_FILE}: the manifest is signed; set {KEY_ENV} to the key to verify it")
        if signature.get("key_id") != key_id(key):
            raise InputError(f"{root / MANIFEST_FILE}: wrong key: the manifest was signed with key id "
                             f"{signature.get('key_id')}, {KEY_ENV} holds key id {key_id(key)}")
        if not hmac.compare_digest(str(signature.get("value")), _signature(manifest["files"], key)):
            raise InputError(f"{root / MANIFEST_FILE}: damaged manifest: its signature does not match its file list")
        signed = True
    recorded = {f["path"]: f["sha256"] for f in manifest["files"]}
    present = {f["path"]: f["sha256"] for f in artefacts(root)}
    problems = [f"added: {p}" for p in sorted(set(present) - set(recorded))]
    problems += [f"removed: {p}" for p in sorted(set(recorded) - set(present))]
    problems += [f"changed: {p}" for p in sorted(set(recorded) & set(present)) if recorded[p] != present[p]]
    if problems:
        raise ManifestMismatch(f"{root}: {len(problems)} file(s) differ from {MANIFEST_FILE}:\n  " + "\n  ".join(problems))
    return {"files": len(recorded), "signed": signed}
