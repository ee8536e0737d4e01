"""The training report: ``RUN/reports/train.json`` in the common envelope, and the loss-curve plot."""

from __future__ import annotations

from pathlib import Path

from fmaudit.corpus import iter_json_rows, sha256_file
from fmaudit.reports.content import Check

PLOT = "train_loss.png"


def lineage(data_dir: Path, tokenizer_dir: Path) -> list[dict]:
    """The data job's report files and the tokenizer, with sha256: what this model was trained from."""
    job = data_dir.parent if data_dir.name == "data" else data_dir
    files = sorted((job / "reports").glob("*.json")) if (job / "reports").is_dir() else []
    files += [f for f in (tokenizer_dir / "tokenizer.json", tokenizer_dir / "tokenizer_config.json") if f.exists()]
    return [{"path": str(f), "sha256": sha256_file(f), "bytes": f.stat().st_size} for f in files]


def read_metrics(run: Path) -> list[dict]:
    """The rows of ``RUN/metrics.jsonl`` (none before the first log interval)."""
    path = run / "metrics.jsonl"
    return [row for _, row in iter_json_rows(path)] if path.exists() else []


def write_train_report(run: Path, settings, policy, config, n_params: int, token_meta: dict, data_dir: Path,
                       tokenizer_dir: Path, result, d, *, started_at: str, wall_s: float) -> dict:
    """Build, validate and write ``RUN/reports/train.json`` (and the plot); returns the report."""
    from fmaudit.core.sizing import model_size, peak_flops
    from fmaudit.reports import make_report, new_run_id, write_report, write_summary
    from fmaudit.reports.manifest import write_manifest

    rows = read_metrics(run)
    train_rows = [r for r in rows if r["split"] == "train"]
    val_rows = [r for r in rows if r["split"] == "val"]
    reports_dir = run / "reports"
    reports_dir.mkdir(parents=True, exist_ok=True)
    plot_loss(train_rows, val_rows, reports_dir / PLOT)
    size = model_size(config, settings.seq_len, settings.micro_batch)
    initial, final = result.initial_val_loss, result.final_val_loss
    device_name = _device_name(d.device)
    metrics = {
        "parameters": n_params,
        "non_embedding_parameters": size["non_embedding_parameters"],
        "steps": result.steps,
        "tokens_seen": result.tokens_seen,
        "epochs": round(result.tokens_seen / max(token_meta["tokens"]["train"], 1), 4),
        "initial_val_loss": initial,
        "final_val_loss": final,
        "final_val_perplexity": _exp(final),
        "final_train_loss": train_rows[-1]["loss"] if train_rows else None,
        "tokens_per_s": result.tokens_per_s,
        "flops_per_token": size["flops_per_token_train"],
        "processes": d.world,
        "device": device_name,
    }
    peak = peak_flops(device_name)
    if peak and result.tokens_per_s:
        metrics["mfu"] = result.tokens_per_s * size["flops_per_token_train"] / (peak * d.world)
    finite = all(r["loss"] == r["loss"] and abs(r["loss"]) != float("inf") for r in rows)
    checks = [
        Check.evaluate("heldout_loss_ratio", final / initial if initial and final is not None else float("inf"),
                       settings.max_heldout_loss_ratio, "max",
                       description="final / initial held-out loss: training made progress on unseen documents"),
        Check.evaluate("finite_losses", finite, True, "equal", description="no NaN or infinite loss was logged"),
    ]
    details = {
        "model_config": config.to_dict(),
        "train_settings": settings.model_dump(),
        "sizing": size,
        "data": {"folder": str(data_dir), "documents": token_meta["documents"], "tokens": token_meta["tokens"],
                 "tokenizer": str(tokenizer_dir), "vocab_size": token_meta["vocab_size"]},
        "hardware": {"device": device_name, "processes": d.world, "distributed": settings.distributed if d.world > 1
                     else None},
        "loss_curve": {"train": [{k: r[k] for k in ("step", "tokens", "loss", "lr")} for r in train_rows],
                       "val": [{k: r[k] for k in ("step", "loss", "ppl")} for r in val_rows]},
        "checkpoint": str(run / "model"),
    }
    section = settings.model_dump(exclude_defaults=True)
    report = make_report("train", new_run_id(), started_at, kind="training", policy=policy, section=section,
                         inputs=lineage(data_dir, tokenizer_dir), metrics=metrics, checks=checks, details=details,
                         plots=[PLOT], timings={"wall_s": wall_s})
    write_report(reports_dir, report)
    write_summary(reports_dir, report["run_id"])
    write_manifest(run)
    return report


def plot_loss(train_rows: list[dict], val_rows: list[dict], path: Path) -> None:
    from matplotlib.figure import Figure  # not pyplot: no global backend switch in the caller's process

    fig = Figure(figsize=(6, 4), dpi=100)
    ax = fig.add_subplot()
    ax.plot([r["step"] for r in train_rows], [r["loss"] for r in train_rows], label="train")
    ax.plot([r["step"] for r in val_rows], [r["loss"] for r in val_rows], "o-", label="held-out")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("next-token loss (nats)")
    ax.set_title("Pre-training loss")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)


def _exp(x):
    import math

    return math.exp(min(x, 50)) if x is not None else None


def _device_name(device) -> str:
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    from fmaudit.reports.environment import _cpu_name

    return f"cpu ({_cpu_name()})"
