"""Reports people read: report.html (self-contained, rendered in a real browser with no request leaving the
page), report.md, MODEL_CARD.md, public and internal audiences, tamper evidence, the compliance notebook."""

from __future__ import annotations

import html
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, run_cli


@pytest.fixture(scope="module")
def documents(quick_demo, tmp_path_factory):
    out = tmp_path_factory.mktemp("documents")
    code = run_cli("report", quick_demo["out"], "--audience", "both", "--out", out)
    return {"out": out, "code": code, "demo": quick_demo["out"]}


def test_documents_render_every_check_with_embedded_plots_and_no_machine_paths(documents):
    assert documents["code"] == 0
    out = documents["out"]
    html = (out / "report.html").read_text()
    summary = json.loads((documents["demo"] / "summary.json").read_text())
    for check in summary["checks"]:  # every check, passed ones too
        assert check["name"] in html
    assert "All error-level checks passed" in html and 'id="lineage"' in html and "<svg" in html
    assert html.count('src="data:image/png;base64,') >= 2  # plots embedded, not linked
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "") and "https://" not in html
    for doc in ("report.html", "report.md", "MODEL_CARD.md", "report.public.html"):
        text = (out / doc).read_text()
        assert str(documents["demo"]) not in text and "/tmp/" not in text, doc
    card = (out / "MODEL_CARD.md").read_text()
    meta = yaml.safe_load(card.split("---")[1])
    assert meta["model-index"][0]["results"] and "## Training data" in card and "## Ethical considerations" in card
    assert "| pass | pipeline | accounting_identity |" in (out / "report.md").read_text()


def test_public_report_holds_no_sample_text(documents):
    samples = [v for p in documents["demo"].rglob("reports/*.json") if p.name not in ("summary.json", "manifest.json")
               for s in json.loads(p.read_text()).get("samples", []) for k, v in s.items()
               if k != "kind" and isinstance(v, str) and len(v) > 20]
    assert samples, "the demo's reports should hold samples to leave out"
    internal = (documents["out"] / "report.html").read_text()
    assert any(s[:40] in internal for s in samples)
    # the protocol names a canary's format ("... the east door is {secret}. ..."): its literal part may be shown,
    # so a sample starting like it counts as leaked only when it is there whole (with its secret)
    formats = [p["extra"]["format"].split("{")[0] for p in _protocols(documents["demo"])
               if isinstance(p.get("extra"), dict) and isinstance(p["extra"].get("format"), str)]
    for doc in ("report.public.html", "report.public.md", "MODEL_CARD.public.md"):
        text = (documents["out"] / doc).read_text()
        assert "public version of the report" in text
        plain = html.unescape(text)
        leaked = [s for s in samples if s in plain or (s[:40] in text and not any(f.startswith(s[:40]) for f in formats))]
        assert not leaked, f"{doc} holds sample text: {leaked[:2]}"


def _protocols(demo: Path) -> list[dict]:
    """The ``protocol`` of every audit report in the demo folder."""
    reports = [json.loads(p.read_text()) for p in demo.rglob("reports/*.json")]
    return [r["protocol"] for r in reports if isinstance(r, dict) and isinstance(r.get("protocol"), dict)]


def test_reports_and_documents_hold_no_injected_pii(documents):
    demo = documents["demo"]
    values = {r["value"] for r in map(json.loads, (demo / "truth.jsonl").read_text().splitlines())
              if r.get("kind") == "pii" and len(r.get("value", "")) >= 6}
    assert len(values) > 30
    files = [p for p in demo.rglob("*") if p.is_file() and "reports" in p.relative_to(demo).parts]
    files += [p for p in demo.glob("*") if p.is_file() and p.name != "truth.jsonl"]
    files += [p for p in documents["out"].iterdir() if p.is_file()]
    assert len(files) > 10
    for path in files:
        if path.suffix == ".png":
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        leaked = sorted(v for v in values if v in text)
        assert not leaked, f"{path} holds injected PII: {leaked[:3]}"


def test_verify_names_changed_added_and_removed_files(tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    (run / "reports").mkdir(parents=True)
    (run / "reports" / "a.json").write_text('{"a": 1}\n')
    (run / "data.jsonl").write_text('{"id": "x"}\n')
    monkeypatch.setenv("FMAUDIT_MANIFEST_KEY", "k" * 32)
    from fmaudit.reports.manifest import write_manifest

    manifest = write_manifest(run)
    assert manifest["signature"]["algorithm"] == "HMAC-SHA256" and "k" * 32 not in json.dumps(manifest)
    assert run_cli("verify", run) == 0 and "signature verified" in capsys.readouterr().out
    original = (run / "reports" / "a.json").read_bytes()
    (run / "reports" / "a.json").write_bytes(original.replace(b"1", b"2"))  # one byte
    assert run_cli("verify", run) == 1
    assert "changed: reports/a.json" in capsys.readouterr().err
    (run / "reports" / "a.json").write_bytes(original)
    (run / "extra.txt").write_text("x")
    (run / "data.jsonl").unlink()
    assert run_cli("verify", run) == 1
    err = capsys.readouterr().err
    assert "added: extra.txt" in err and "removed: data.jsonl" in err
    (run / "extra.txt").unlink()
    (run / "data.jsonl").write_text('{"id": "x"}\n')
    monkeypatch.setenv("FMAUDIT_MANIFEST_KEY", "w" * 32)
    assert run_cli("verify", run) == 2 and "wrong key" in capsys.readouterr().err
    monkeypatch.setenv("FMAUDIT_MANIFEST_KEY", "k" * 32)
    signed = json.loads((run / "MANIFEST.json").read_text())
    signed["files"][0]["sha256"] = "0" * 64  # the list edited to match a changed file: the signature catches it
    (run / "MANIFEST.json").write_text(json.dumps(signed))
    assert run_cli("verify", run) == 2 and "signature does not match" in capsys.readouterr().err
    (run / "MANIFEST.json").write_text('{"format": "fmaudit-manifest-1", "files": [')
    assert run_cli("verify", run) == 2 and "damaged manifest" in capsys.readouterr().err


def _chromium() -> str | None:
    return next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)


def _page_requests(page: Path, tmp: Path, dump_dom: bool = False) -> tuple[set[str], str]:
    """Open ``page`` in headless Chromium with a network log; returns the URLs the page itself requested
    (the browser's own background traffic, initiator 'not an origin', is left out) and, asked, the DOM."""
    net_log = tmp / f"net-{page.stem}.json"
    flags = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--disable-background-networking", "--disable-component-update", "--no-first-run",
             f"--user-data-dir={tmp / 'profile'}", "--window-size=1280,2400", f"--log-net-log={net_log}"]
    extra = ["--dump-dom"] if dump_dom else [f"--screenshot={tmp / 'shot.png'}"]
    done = subprocess.run(flags + extra + [page.resolve().as_uri()], capture_output=True, text=True, timeout=180)
    log = json.loads(net_log.read_text())
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    urls = {e["params"]["url"] for e in log["events"] if e["type"] == start and "url" in (e.get("params") or {})
            and e["params"].get("initiator") != "not an origin"}
    return {u for u in urls if not u.startswith(("file://", "data:"))}, done.stdout


@pytest.mark.skipif(_chromium() is None, reason="no headless Chromium here (.ci/run installs Debian's chromium)")
def test_report_renders_in_headless_chromium_with_no_request_leaving_the_page(documents, tmp_path):
    bait = tmp_path / "bait.html"  # the log does see a page's own requests (a closed loopback port: no traffic)
    bait.write_text('<html><body><img src="http://127.0.0.1:9/pixel.png"></body></html>')
    assert _page_requests(bait, tmp_path)[0] == {"http://127.0.0.1:9/pixel.png"}
    page = documents["out"] / "report.html"
    left, _ = _page_requests(page, tmp_path)
    assert (tmp_path / "shot.png").stat().st_size > 10_000
    assert not left, f"requests left the page: {sorted(left)[:5]}"
    _, dom = _page_requests(page, tmp_path, dump_dom=True)
    assert '<table class="checks">' in dom and "accounting_identity" in dom
    assert 'src="data:image/png;base64,' in dom and "<svg" in dom


def test_compliance_notebook_runs_on_the_demo(quick_demo, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("FMAUDIT_DEMO", str(quick_demo["out"]))
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    nb = nbformat.read(ROOT / "examples" / "compliance_review.ipynb", as_version=4)
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    outputs = "".join(o.get("text", "") + json.dumps(o.get("data", {})) for c in nb.cells if c.cell_type == "code"
                      for o in c.get("outputs", []))
    assert "checks" in outputs and "injected PII values were not anonymized" in outputs
    assert "image/png" in outputs  # the plots were shown


def test_filter_job_example(tmp_path):
    import sys

    res = subprocess.run([sys.executable, str(ROOT / "examples" / "filter_job.py"), str(tmp_path / "ex")],
                         capture_output=True, text=True, cwd=ROOT, timeout=600,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert res.returncode == 0, res.stderr[-2000:]
    assert "verdict: PASSED" in res.stdout and "accounting_identity" in res.stdout
