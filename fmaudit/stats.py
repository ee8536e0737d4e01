"""Per-stage statistics that merge exactly across shards and workers.

Counters and histogram bins are integers, so their merge is exact in any order. Moments keep float
sums; the runner merges shard statistics in shard order, so the result is the same for any number of
workers. Samples are capped and anonymized as they are recorded, so no raw PII reaches a report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

Z95 = 1.959963984540054


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a rate ``k / n`` (NaNs for ``n == 0``); shared by model stages and audits."""
    if n <= 0:
        return math.nan, math.nan
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # at k == 0 (k == n) the bound is exactly 0 (1); rounding leaves 1e-17 there otherwise
    lo = 0.0 if k <= 0 else max(0.0, centre - half)
    hi = 1.0 if k >= n else min(1.0, centre + half)
    return lo, hi


@dataclass
class Moments:
    """Count, sum, sum of squares, min and max of a stream of numbers."""

    n: int = 0
    total: float = 0.0
    total_sq: float = 0.0
    min: float = math.inf
    max: float = -math.inf

    def add(self, x: float) -> None:
        self.n += 1
        self.total += x
        self.total_sq += x * x
        self.min = min(self.min, x)
        self.max = max(self.max, x)

    def merge(self, other: "Moments") -> None:
        self.n += other.n
        self.total += other.total
        self.total_sq += other.total_sq
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else float("nan")

    @property
    def std(self) -> float:
        if self.n < 2:
            return 0.0
        var = max(0.0, (self.total_sq - self.total * self.total / self.n) / (self.n - 1))
        return math.sqrt(var)

    def to_json(self) -> dict:
        if not self.n:
            return {"n": 0, "total": 0.0, "total_sq": 0.0, "min": None, "max": None}
        return {"n": self.n, "total": self.total, "total_sq": self.total_sq, "min": self.min, "max": self.max}

    @classmethod
    def from_json(cls, d: dict) -> "Moments":
        return cls(d["n"], d["total"], d["total_sq"],
                   math.inf if d["min"] is None else d["min"], -math.inf if d["max"] is None else d["max"])

    def summary(self) -> dict:
        return {"n": self.n, "mean": self.mean if self.n else None, "std": self.std,
                "min": self.min if self.n else None, "max": self.max if self.n else None}


@dataclass
class Histogram:
    """Fixed-bin histogram over [lo, hi]; values outside are clipped into the end bins."""

    lo: float
    hi: float
    counts: list[int]

    @classmethod
    def empty(cls, lo: float, hi: float, bins: int) -> "Histogram":
        return cls(lo, hi, [0] * bins)

    def add(self, x: float) -> None:
        bins = len(self.counts)
        i = int((x - self.lo) / (self.hi - self.lo) * bins) if self.hi > self.lo else 0
        self.counts[min(max(i, 0), bins - 1)] += 1

    def merge(self, other: "Histogram") -> None:
        if (other.lo, other.hi, len(other.counts)) != (self.lo, self.hi, len(self.counts)):
            raise ValueError("cannot merge histograms with different bins")
        self.counts = [a + b for a, b in zip(self.counts, other.counts)]

    @property
    def edges(self) -> list[float]:
        bins = len(self.counts)
        return [self.lo + (self.hi - self.lo) * i / bins for i in range(bins + 1)]

    def to_json(self) -> dict:
        return {"lo": self.lo, "hi": self.hi, "counts": list(self.counts)}

    @classmethod
    def from_json(cls, d: dict) -> "Histogram":
        return cls(d["lo"], d["hi"], list(d["counts"]))


@dataclass
class StageStats:
    """What one stage saw in one shard (or, merged, in the whole run)."""

    counters: dict[str, int] = field(default_factory=dict)
    moments: dict[str, Moments] = field(default_factory=dict)
    histograms: dict[str, Histogram] = field(default_factory=dict)
    samples: list[dict] = field(default_factory=list)
    max_samples: int = 3

    def add(self, name: str, value: int = 1) -> None:
        """Increase an integer counter."""
        self.counters[name] = self.counters.get(name, 0) + value

    def observe(self, name: str, x: float) -> None:
        """Add a value to the moments named ``name``."""
        self.moments.setdefault(name, Moments()).add(float(x))

    def hist(self, name: str, x: float, lo: float = 0.0, hi: float = 1.0, bins: int = 20) -> None:
        """Add a value to a fixed-bin histogram (same bins on every shard)."""
        self.histograms.setdefault(name, Histogram.empty(lo, hi, bins)).add(float(x))

    def sample(self, kind: str, **fields: str) -> None:
        """Keep a capped sample for the report; every string field is anonymized first."""
        if sum(1 for s in self.samples if s["kind"] == kind) >= self.max_samples:
            return
        from fmaudit.text.scrub import scrub

        self.samples.append({"kind": kind, **{k: scrub(v) if isinstance(v, str) else v for k, v in fields.items()}})

    def merge(self, other: "StageStats") -> None:
        for k, v in other.counters.items():
            self.counters[k] = self.counters.get(k, 0) + v
        for k, m in other.moments.items():
            self.moments.setdefault(k, Moments()).merge(m)
        for k, h in other.histograms.items():
            if k in self.histograms:
                self.histograms[k].merge(h)
            else:
                self.histograms[k] = Histogram.from_json(h.to_json())
        for s in other.samples:
            if sum(1 for t in self.samples if t["kind"] == s["kind"]) < self.max_samples:
                self.samples.append(s)

    def to_json(self) -> dict:
        return {
            "counters": dict(sorted(self.counters.items())),
            "moments": {k: m.to_json() for k, m in sorted(self.moments.items())},
            "histograms": {k: h.to_json() for k, h in sorted(self.histograms.items())},
            "samples": self.samples,
        }

    @classmethod
    def from_json(cls, d: dict, max_samples: int = 3) -> "StageStats":
        return cls(
            dict(d["counters"]),
            {k: Moments.from_json(v) for k, v in d["moments"].items()},
            {k: Histogram.from_json(v) for k, v in d["histograms"].items()},
            list(d["samples"]),
            max_samples,
        )

    def by_prefix(self, prefix: str) -> dict[str, int]:
        """Counters whose name starts with ``prefix``, keyed by the rest of the name."""
        return {k[len(prefix):]: v for k, v in sorted(self.counters.items()) if k.startswith(prefix)}
