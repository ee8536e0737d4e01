"""What a report says about where it was made: packages, git revision, host, CPU and GPU."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import threading
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, distribution

PACKAGES = ["fmaudit", "torch", "transformers", "tokenizers", "presidio-analyzer", "presidio-anonymizer", "spacy",
            "detoxify", "alt-profanity-check", "fairlearn", "captum", "kronfluence", "pydantic", "pandas", "numpy", "ray"]


def package_versions(names=PACKAGES) -> dict[str, str]:
    """The installed version of each of ``names`` that is installed (``importlib.metadata.version``'s answer)."""
    out = {}
    for name in names:
        try:
            out[name] = _version(name)
        except PackageNotFoundError:
            pass
    return out


def _version(name: str) -> str:
    """``importlib.metadata.version(name)``, parsing only the metadata's headers: ``version`` parses the whole
    file, long description included, which made the versions of a report most of a small job's environment."""
    import email

    dist = distribution(name)
    text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or dist.read_text("") or ""
    return email.message_from_string(text.partition("\n\n")[0])["Version"]  # headers end at the first blank line


def git_revision(path: str | None = None) -> str | None:
    here = path or os.path.dirname(os.path.abspath(__file__))
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if rev.returncode != 0:
        return None
    return rev.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _gpus() -> list[str]:
    import sys

    torch = sys.modules.get("torch")  # only report what a run that loaded torch can see; never import it here
    if torch is None or not torch.cuda.is_available():
        return []
    return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]


@lru_cache(maxsize=1)
def _static() -> dict:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "host": socket.gethostname(),
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "fmaudit_version": _fmaudit_version(),
        "git_revision": git_revision(),  # of fmaudit's own source tree (None after a plain pip install)
        "project_revision": git_revision(os.getcwd()),  # of the user's project, when run inside a git checkout
        "packages": package_versions(),
    }


def _fmaudit_version() -> str:
    from fmaudit import __version__

    return __version__


_prefetch: threading.Thread | None = None


def prefetch() -> None:
    """Start gathering the facts that do not change during a run on a background thread (a filter job calls
    this at its start): the git commands then run while the job works, and its reports find the facts ready."""
    global _prefetch
    if _prefetch is None and _static.cache_info().currsize == 0:
        _prefetch = threading.Thread(target=_static, name="fmaudit-environment", daemon=True)
        _prefetch.start()


def environment() -> dict:
    if _prefetch is not None:
        _prefetch.join()  # never two computations of _static at once
    return {**_static(), "gpus": _gpus()}
