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


GIT_COMMANDS = (["rev-parse", "HEAD"], ["status", "--porcelain", "--untracked-files=no"])


def git_revision(path: str | None = None) -> str | None:
    """The commit checked out where ``path`` is (default: fmaudit's own source), ``-dirty`` when tracked files
    changed; None outside a git checkout or without git."""
    return git_revisions([path])[0]


def git_revisions(paths: list[str | None]) -> list[str | None]:
    """:func:`git_revision` of each path, every git command started at once (one after the other, they were
    most of a small job's wait for its reports on a loaded machine)."""
    return [_git_answer(procs) for procs in [_start_git(p) for p in paths]]


def _start_git(path: str | None):
    here = path or os.path.dirname(os.path.abspath(__file__))
    procs: list[subprocess.Popen] = []
    try:
        for args in GIT_COMMANDS:
            procs.append(subprocess.Popen(["git", *args], cwd=here, stdout=subprocess.PIPE,
                                          stderr=subprocess.DEVNULL, text=True))
    except OSError:  # no git, or no such folder
        _stop(procs)
        return None
    return procs


def _stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.kill()
        p.communicate()


def _git_answer(procs) -> str | None:
    if procs is None:
        return None
    try:
        (rev, _), (dirty, _) = (p.communicate(timeout=5) for p in procs)
    except subprocess.TimeoutExpired:
        _stop(procs)
        return None
    if procs[0].returncode != 0:
        return None
    return rev.strip() + ("-dirty" if dirty.strip() else "")


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
    revisions = git_revisions([None, os.getcwd()])
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "host": socket.gethostname(),
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "fmaudit_version": _fmaudit_version(),
        "git_revision": revisions[0],  # of fmaudit's own source tree (None after a plain pip install)
        "project_revision": revisions[1],  # of the user's project, when run inside a git checkout
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
