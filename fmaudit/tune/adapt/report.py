"""The ``fairness.json`` report of the adapt stage (common envelope) and its accuracy-disparity plot."""

from __future__ import annotations

from pathlib import Path

from fmaudit.reports.content import Check

REPORT = "fairness"
PLOT = "fairness_front.png"


def checks(models: dict, chosen: str | None, metric: str, bound: float, warnings: list[str]) -> list[Check]:
    best = chosen or min(models, key=lambda n: models[n]["disparities"][metric])
    value = models[best]["disparities"][metric]
    out = [Check.evaluate(
        "model_within_disparity_bound", value, bound, "max",
        description=f"{metric} of the chosen model (the most accurate within the bound) on the test split; when "
                    f"no model qualifies, the smallest of any model ({best}); ci: 95% bootstrap interval",
        ci=tuple(ci) if (ci := (models[best].get("disparities_ci") or {}).get(metric)) else None)]
    out.append(Check.evaluate("groups_large_enough", len(warnings), 0, "max", severity="warning",
                              description="groups of the test split too small (or one-sided) to judge their rates"))
    return out


def trade_off_table(models: dict, metric: str, chosen: str | None) -> str:
    """A plain-text table: one row per model, accuracy and disparities with 95% intervals, the disparity as a
    multiple of the unconstrained model's (x base) and the accuracy given up for it (cost)."""
    def ci(v, c):
        return f"{v:.3f} [{c[0]:.3f}, {c[1]:.3f}]" if c else f"{v:.3f}"

    head = f"{'model':34} {'accuracy':>22} {metric:>30} {'x base':>6} {'cost':>6} {'EO diff':>8} {'needs A':>7}"
    lines = [head, "-" * len(head)]
    for name, m in sorted(models.items(), key=lambda kv: kv[1]["disparities"][metric]):
        mark = " *" if name == chosen else ""
        lines.append(f"{(name + mark):34} {ci(m['accuracy'], m.get('accuracy_ci')):>22} "
                     f"{ci(m['disparities'][metric], (m.get('disparities_ci') or {}).get(metric)):>30} "
                     f"{_num(m.get('disparity_ratio'), '.2f'):>6} {_num(m.get('accuracy_cost'), '+.3f'):>6} "
                     f"{m['disparities']['equalized_odds_difference']:>8.3f} "
                     f"{'yes' if m['needs_sensitive_features'] else 'no':>7}")
    return "\n".join(lines)


def _num(v, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def plot_front(models: dict, front: list[str], metric: str, bound: float, chosen: str | None, path: Path) -> Path:
    """Accuracy against disparity for every model, the front joined, the bound as a dashed line."""
    from matplotlib.figure import Figure  # not pyplot: no global backend switch in the caller's process

    fig = Figure(figsize=(6.4, 4.4), dpi=100)
    ax = fig.add_subplot()
    for name, m in sorted(models.items()):
        x, y = m["disparities"][metric], m["accuracy"]
        xerr = m.get("disparities_ci", {}).get(metric)
        yerr = m.get("accuracy_ci")
        # a percentile interval of a max-minus-min disparity need not hold its point estimate: clip at the point
        ax.errorbar([x], [y], xerr=[[max(x - xerr[0], 0)], [max(xerr[1] - x, 0)]] if xerr else None,
                    yerr=[[max(y - yerr[0], 0)], [max(yerr[1] - y, 0)]] if yerr else None, fmt="o",
                    color="#c44e52" if name == chosen else "#4c72b0", alpha=0.8, capsize=2)
        ax.annotate(name, (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")
    pts = sorted((models[n]["disparities"][metric], models[n]["accuracy"]) for n in front)
    ax.plot([p[0] for p in pts], [p[1] for p in pts], "-", color="#55a868", label="front")
    ax.axvline(bound, color="#c44e52", linestyle="--", label=f"bound {bound:g}")
    ax.set_xlabel(f"{metric} (test split)")
    ax.set_ylabel("accuracy (test split)")
    ax.set_title("Accuracy-disparity trade-off (95% bootstrap intervals)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path
