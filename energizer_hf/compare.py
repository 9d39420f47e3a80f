"""Compare runs: learning curves over seeds, AUC, final metric and label savings.

``energizer-hf compare RUN_DIR... [--by strategy]`` and :func:`compare_runs` read the
``rounds.jsonl`` of each run directory (a directory without one stands for the run
directories under it), group the runs (by strategy by default; every run of a group is
one seed), and report per group:

* the learning curve: mean and ± one standard deviation over the group's runs, per
  labelled count (runs with other labelled counts are linearly interpolated onto the
  counts they share);
* the normalised area under each run's curve (AUC) and its final metric, mean ± std;
* **label savings**: the labels each group needed to reach a fraction (default 0.95 and
  0.98) of the reference group's (``random``) final metric, read off the group's mean
  curve with linear interpolation between rounds ("not reached" when it never does), and
  the saving against the reference's own count.

The result prints as a markdown table, and :meth:`Comparison.plot` draws the curves with
their bands into a PNG on its own Agg canvas (the global matplotlib backend is left alone).

>>> import tempfile, json, pathlib
>>> from energizer_hf.run import RunDir
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> for name, ys in (("random", [0.5, 0.7, 0.8]), ("entropy", [0.5, 0.8, 0.85])):
...     d = root / name
...     d.mkdir()
...     lines = [json.dumps({"round": i, "strategy": name, "num_labelled": 10 * (i + 1),
...                          "test/accuracy": y}) for i, y in enumerate(ys)]
...     _ = RunDir(d).rounds.write_text("\\n".join(lines) + "\\n")
>>> c = compare_runs([root])
>>> round(c.groups["entropy"].labels_to_reach[0.95], 2)  # 0.95 x 0.8 = 0.76: from 10 to 20
18.67
>>> c.groups["random"].labels_to_reach[0.95]  # 0.76: between 0.7 (20) and 0.8 (30)
26.0
>>> round(c.groups["entropy"].savings[0.95], 3)
0.282
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from energizer_hf.errors import CompareError
from energizer_hf.run import RunDir

__all__ = ["Comparison", "GroupSummary", "compare_runs", "labels_to_reach", "write_comparison"]


@dataclass
class GroupSummary:
    """One group's runs, summarised.

    Attributes:
        name: the group's value of the ``by`` key.
        runs: the run directories.
        x: labelled counts of the curve.
        mean / std: the metric's mean and standard deviation over the runs at ``x``.
        auc: each run's normalised area under its curve.
        final: each run's final metric.
        labels_to_reach: fraction → labels the mean curve needed to reach that fraction of
            the reference's final metric (``None``: not reached).
        savings: fraction → ``1 - labels / reference labels`` (``None`` when either is
            not reached).
    """

    name: str
    runs: list[str]
    x: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    auc: list[float]
    final: list[float]
    labels_to_reach: dict[float, float | None] = field(default_factory=dict)
    savings: dict[float, float | None] = field(default_factory=dict)

    @property
    def auc_mean(self) -> float:
        return float(np.mean(self.auc))

    @property
    def auc_std(self) -> float:
        return float(np.std(self.auc))

    @property
    def final_mean(self) -> float:
        return float(np.mean(self.final))

    @property
    def final_std(self) -> float:
        return float(np.std(self.final))


@dataclass
class Comparison:
    """The result of :func:`compare_runs`."""

    metric: str
    by: str
    reference: str | None
    reference_final: float | None
    fractions: tuple[float, ...]
    groups: dict[str, GroupSummary]

    def to_markdown(self) -> str:
        """The summary table (GitHub markdown)."""
        ref = f" of {self.reference}'s final {self.reference_final:.4f}" if self.reference_final is not None else ""
        head = ["group", "runs", "AUC (mean ± std)", f"final {self.metric} (mean ± std)", "final labels"]
        head += [f"labels to {f:g}{ref}" for f in self.fractions]
        head += [f"saving at {f:g}" for f in self.fractions]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for g in self.groups.values():
            cells = [g.name, str(len(g.runs)), f"{g.auc_mean:.4f} ± {g.auc_std:.4f}",
                     f"{g.final_mean:.4f} ± {g.final_std:.4f}", f"{g.x[-1]:g}"]
            for f in self.fractions:
                v = g.labels_to_reach.get(f)
                cells.append("not reached" if v is None else f"{v:.1f}")
            for f in self.fractions:
                v = g.savings.get(f)
                cells.append("–" if v is None else f"{100 * v:+.1f}%")
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            "metric": self.metric, "by": self.by, "reference": self.reference,
            "reference_final": self.reference_final, "fractions": list(self.fractions),
            "groups": {
                name: {
                    "runs": g.runs, "x": g.x.tolist(), "mean": g.mean.tolist(), "std": g.std.tolist(),
                    "auc": g.auc, "auc_mean": g.auc_mean, "auc_std": g.auc_std,
                    "final": g.final, "final_mean": g.final_mean, "final_std": g.final_std,
                    "labels_to_reach": {str(k): v for k, v in g.labels_to_reach.items()},
                    "savings": {str(k): v for k, v in g.savings.items()},
                }
                for name, g in self.groups.items()
            },
        }

    def plot(self, path: str | Path, title: str | None = None) -> Path:
        """Save the mean curves with ± std bands as a PNG (a local Agg canvas)."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=(6.4, 4.2), dpi=120)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot(1, 1, 1)
        for g in self.groups.values():
            (line,) = ax.plot(g.x, g.mean, marker="o", ms=3, label=f"{g.name} (AUC {g.auc_mean:.3f})")
            if len(g.runs) > 1:
                ax.fill_between(g.x, g.mean - g.std, g.mean + g.std, color=line.get_color(), alpha=0.2)
        if self.reference_final is not None:
            for f in self.fractions:
                ax.axhline(f * self.reference_final, color="grey", lw=0.8, ls=":")
        ax.set_xlabel("labelled examples")
        ax.set_ylabel(self.metric)
        ax.set_title(title or f"{self.metric} by {self.by}: mean ± std over runs")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
        return path


def labels_to_reach(x: Sequence[float], y: Sequence[float], target: float) -> float | None:
    """The first labelled count at which the curve ``(x, y)`` reaches ``target``, linearly
    interpolated between the two rounds around the crossing; ``None`` when it never does.

    >>> labels_to_reach([10, 20, 30], [0.5, 0.7, 0.9], 0.8)
    25.0
    >>> labels_to_reach([10, 20], [0.5, 0.6], 0.8) is None
    True
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    hit = np.flatnonzero(y >= target)
    if hit.size == 0:
        return None
    i = int(hit[0])
    if i == 0:
        return float(x[0])
    x0, x1, y0, y1 = x[i - 1], x[i], y[i - 1], y[i]
    return round(float(x0 + (target - y0) * (x1 - x0) / (y1 - y0)), 6)


def _run_dirs(paths: Sequence[str | Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if RunDir(p).rounds.is_file():
            out.append(p)
            continue
        if not p.is_dir():
            raise CompareError(f"{p} is not a run directory (no such directory).")
        found = sorted(d for d in p.iterdir() if d.is_dir() and RunDir(d).rounds.is_file())
        if not found:
            raise CompareError(
                f"{p} has no rounds.jsonl and no run directories under it: give run directories "
                "(made by ActiveLearner / Trainer.active_fit / energizer-hf run)."
            )
        out += found
    return list(dict.fromkeys(out))


def _group_of(run: Path, records: list[dict], by: str) -> str:
    if by in records[0]:
        return str(records[0][by])
    run_file = RunDir(run).run_file
    config = json.loads(run_file.read_text()).get("config", {}) if run_file.exists() else {}
    node: Any = config
    for part in by.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, dict) and isinstance(node.get("run"), dict) and part in node["run"]:
            node = node["run"][part]  # RunConfig fields of the HF-native path
        else:
            raise CompareError(
                f"{run}: cannot group by {by!r}: it is neither a field of its round records "
                f"({', '.join(sorted(records[0])[:12])}, ...) nor a key of its run.json config."
            )
    return str(node)


def compare_runs(
    run_dirs: Sequence[str | Path],
    *,
    by: str = "strategy",
    metric: str = "test/accuracy",
    reference: str | None = "random",
    fractions: Sequence[float] = (0.95, 0.98),
) -> Comparison:
    """Group runs and compute curves, AUC, final metric and label savings.

    Args:
        run_dirs: run directories, or directories holding run directories.
        by: the grouping key: a field of the round records (``strategy``) or a key of
            ``run.json``'s config (dotted, e.g. ``run.learning_rate`` or ``learning_rate``).
        metric: the record field to compare (``test/accuracy``, ``test/f1_macro``, ...).
        reference: the group whose final metric sets the savings targets (``None`` or a
            missing group: no savings).
        fractions: fractions of the reference's final metric.

    Returns:
        A :class:`Comparison`.

    Raises:
        CompareError: a path without runs, a run without the metric, a bad fraction.
    """
    fractions = tuple(float(f) for f in fractions)
    for f in fractions:
        if not 0 < f <= 1.5:
            raise CompareError(f"fractions must be in (0, 1.5], got {f}.")
    runs: dict[str, list[tuple[Path, np.ndarray, np.ndarray]]] = {}
    for run in _run_dirs(run_dirs):
        records = [r for r in RunDir(run).read_records() if r.get("stop_reason") != "awaiting_annotations"]
        if not records:
            raise CompareError(f"{RunDir(run).rounds} has no complete rounds.")
        pts = sorted(
            (float(r["num_labelled"]), float(r[metric]))
            for r in records
            if r.get(metric) is not None and r.get("num_labelled") is not None
        )
        if not pts:
            keys = sorted({k for r in records for k in r if k.startswith(("test/", "val/"))})
            raise CompareError(f"{run}: the records have no {metric!r}; available: {', '.join(keys) or 'none'}.")
        x, y = (np.asarray(v) for v in zip(*pts))
        runs.setdefault(_group_of(run, records, by), []).append((run, x, y))
    groups: dict[str, GroupSummary] = {}
    for name in sorted(runs, key=lambda n: (n != reference, n)):
        members = runs[name]
        lo = max(x[0] for _, x, _ in members)
        hi = min(x[-1] for _, x, _ in members)
        grid = np.unique(np.concatenate([x for _, x, _ in members]))
        grid = grid[(grid >= lo) & (grid <= hi)]
        if grid.size == 0:
            raise CompareError(f"The runs of group {name!r} share no range of labelled counts.")
        ys = np.stack([np.interp(grid, x, y) for _, x, y in members])
        groups[name] = GroupSummary(
            name=name,
            runs=[str(r) for r, _, _ in members],
            x=grid,
            mean=ys.mean(0),
            std=ys.std(0),
            auc=[_auc(x, y) for _, x, y in members],
            final=[float(y[-1]) for _, _, y in members],
        )
    ref = groups.get(reference) if reference else None
    ref_final = ref.final_mean if ref is not None else None
    if ref is not None:
        for g in groups.values():
            for f in fractions:
                g.labels_to_reach[f] = labels_to_reach(g.x, g.mean, f * ref_final)
        for g in groups.values():
            for f in fractions:
                mine, theirs = g.labels_to_reach[f], ref.labels_to_reach[f]
                g.savings[f] = None if mine is None or theirs is None or theirs == 0 else 1 - mine / theirs
    return Comparison(metric, by, reference if ref is not None else None, ref_final, fractions, groups)


def _auc(x: np.ndarray, y: np.ndarray) -> float:
    """Normalised trapezoid area (as :meth:`RoundResults.area_under_curve`)."""
    if x.size < 2 or x[-1] == x[0]:
        return float(y[-1])
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2) / (x[-1] - x[0]))


def write_comparison(comparison: Comparison, out: str | Path) -> dict[str, Path]:
    """Write ``comparison.png``, ``comparison.md`` and ``comparison.json`` into ``out`` (a
    directory; a path ending in ``.png`` names the PNG and its siblings)."""
    out = Path(out)
    if out.suffix.lower() == ".png":
        png, base = out, out.with_suffix("")
    else:
        out.mkdir(parents=True, exist_ok=True)
        png, base = out / "comparison.png", out / "comparison"
    comparison.plot(png)
    md, js = base.with_suffix(".md"), base.with_suffix(".json")
    md.write_text(comparison.to_markdown() + "\n")
    js.write_text(json.dumps(comparison.to_dict(), indent=2, default=lambda v: None if v != v else v))
    return {"png": png, "markdown": md, "json": js}
