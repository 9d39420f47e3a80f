"""``energizer-hf compare`` and :func:`energizer_hf.compare.compare_runs` on synthetic run
directories whose answers are known."""

import json

import numpy as np
import pytest

from energizer_hf.cli import main
from energizer_hf.compare import compare_runs, labels_to_reach
from energizer_hf.errors import CompareError

X = [25, 50, 75, 100]
CURVES = {
    # strategy -> one curve per seed
    "random": [[0.40, 0.60, 0.70, 0.80], [0.50, 0.60, 0.70, 0.80], [0.30, 0.60, 0.70, 0.80]],
    "entropy": [[0.40, 0.78, 0.82, 0.86], [0.50, 0.80, 0.84, 0.88], [0.30, 0.76, 0.80, 0.84]],
    "bad": [[0.20, 0.30, 0.40, 0.50]] * 3,
}


def _write_runs(root, curves=CURVES, xs=X, extra=None):
    for strategy, seeds in curves.items():
        for seed, ys in enumerate(seeds):
            d = root / f"{strategy}-seed{seed}"
            d.mkdir(parents=True)
            rows = [
                {"round": i, "strategy": strategy, "num_labelled": x, "test/accuracy": y, "test/f1_macro": y / 2,
                 "stop_reason": None if i < len(xs) - 1 else "max_rounds"}
                for i, (x, y) in enumerate(zip(xs, ys))
            ]
            (d / "rounds.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
            cfg = {"config": {"run": {"learning_rate": 1e-4 if seed < 2 else 5e-5, **(extra or {})}}}
            (d / "run.json").write_text(json.dumps(cfg))
    return root


def test_curves_auc_final_and_savings(tmp_path):
    c = compare_runs([_write_runs(tmp_path)])
    assert list(c.groups) == ["random", "bad", "entropy"]  # the reference first
    ent, rnd, bad = c.groups["entropy"], c.groups["random"], c.groups["bad"]
    assert ent.x.tolist() == X and len(ent.runs) == 3
    assert ent.mean.tolist() == pytest.approx([0.40, 0.78, 0.82, 0.86])
    assert ent.std.tolist() == pytest.approx(np.std(CURVES["entropy"], axis=0).tolist())
    # AUC of [0.4, 0.78, 0.82, 0.86] over 25..100: (0.59 + 0.80 + 0.84) * 25 / 75
    assert ent.auc[0] == pytest.approx((0.59 + 0.80 + 0.84) / 3)
    assert ent.final_mean == pytest.approx(0.86) and ent.final_std == pytest.approx(np.std([0.86, 0.88, 0.84]))
    assert c.reference_final == pytest.approx(0.80)
    # 0.95 x 0.80 = 0.76: entropy crosses between 25 (0.40) and 50 (0.78)
    assert ent.labels_to_reach[0.95] == pytest.approx(25 + (0.76 - 0.40) / (0.78 - 0.40) * 25)
    # random crosses 0.76 between 75 (0.70) and 100 (0.80): 90 labels
    assert rnd.labels_to_reach[0.95] == pytest.approx(90.0)
    assert rnd.labels_to_reach[0.98] == pytest.approx(75 + (0.784 - 0.70) / 0.10 * 25)
    assert ent.savings[0.95] == pytest.approx(1 - ent.labels_to_reach[0.95] / 90.0)
    assert rnd.savings[0.95] == pytest.approx(0.0)
    assert bad.labels_to_reach[0.95] is None and bad.savings[0.95] is None
    table = c.to_markdown()
    assert "not reached" in table and "| entropy | 3 |" in table


def test_runs_on_other_labelled_counts_are_interpolated(tmp_path):
    _write_runs(tmp_path / "a", {"random": [[0.5, 0.6, 0.7, 0.8]]})
    _write_runs(tmp_path / "b", {"random": [[0.5, 0.7, 0.8]]}, xs=[25, 75, 125])
    c = compare_runs([tmp_path / "a", tmp_path / "b"])
    g = c.groups["random"]
    assert g.x.tolist() == [25, 50, 75, 100]  # the shared range, union of counts
    # run b interpolates 0.6 at 50 and 0.75 at 100
    assert g.mean.tolist() == pytest.approx([0.5, 0.6, 0.7, 0.775])


def test_group_by_a_config_key_and_another_metric(tmp_path):
    c = compare_runs([_write_runs(tmp_path)], by="learning_rate", metric="test/f1_macro", reference=None)
    assert sorted(c.groups) == ["0.0001", "5e-05"]
    assert len(c.groups["0.0001"].runs) == 6 and c.reference_final is None
    assert c.groups["5e-05"].labels_to_reach == {}
    assert compare_runs([tmp_path], by="run.learning_rate").groups.keys() == c.groups.keys()


def test_bad_inputs(tmp_path):
    with pytest.raises(CompareError, match="no rounds.jsonl"):
        compare_runs([tmp_path])
    _write_runs(tmp_path)
    with pytest.raises(CompareError, match="test/accuracy, test/f1_macro"):
        compare_runs([tmp_path], metric="test/auroc")
    with pytest.raises(CompareError, match="cannot group by 'optimizer'"):
        compare_runs([tmp_path], by="optimizer")
    with pytest.raises(CompareError, match="fractions"):
        compare_runs([tmp_path], fractions=[0])
    with pytest.raises(CompareError, match="no such directory"):
        compare_runs([tmp_path / "missing"])


def test_cli_writes_table_png_and_json_without_touching_the_backend(tmp_path, capsys):
    import matplotlib

    backend = matplotlib.get_backend()
    _write_runs(tmp_path / "runs")
    out = tmp_path / "out"
    assert main(["compare", *map(str, sorted((tmp_path / "runs").iterdir())), "--out", str(out),
                 "--fractions", "0.9,0.95"]) == 0
    printed = capsys.readouterr().out
    assert "labels to 0.9" in printed and "| entropy | 3 |" in printed
    png = (out / "comparison.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    data = json.loads((out / "comparison.json").read_text())
    assert data["groups"]["random"]["labels_to_reach"]["0.95"] == pytest.approx(90.0)
    assert (out / "comparison.md").read_text().startswith("| group |")
    assert matplotlib.get_backend() == backend
    assert main(["compare", str(tmp_path / "nothing")]) == 2
    assert "CompareError" in capsys.readouterr().err


def test_labels_to_reach_edges():
    assert labels_to_reach([10, 20], [0.9, 0.95], 0.8) == 10.0  # reached at the first point
    assert labels_to_reach([10, 20, 30], [0.5, 0.9, 0.7], 0.8) == pytest.approx(17.5)  # the first crossing
