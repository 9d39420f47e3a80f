"""Round results and learning-curve plots."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from energizer_hf.results import RoundResults

PLOT_CODE = textwrap.dedent(
    """
    import sys, warnings
    import matplotlib
    matplotlib.use("svg")                # the user's backend (inline in a notebook)
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure
    from energizer_hf.results import RoundResults, plot_learning_curves

    user = plt.figure()                  # a figure of the user's, current
    res = {"a": RoundResults([{"num_labelled": 10, "test/accuracy": 0.5},
                              {"num_labelled": 20, "test/accuracy": 0.7}])}
    out = plot_learning_curves(res, sys.argv[1], title="t")
    assert str(out) == sys.argv[1], out
    assert matplotlib.get_backend() == "svg", matplotlib.get_backend()
    assert plt.get_fignums() == [user.number] and plt.gcf() is user, plt.get_fignums()
    fig = plot_learning_curves(res)      # no path: the Figure, still outside pyplot
    assert isinstance(fig, Figure) and fig.axes[0].get_lines()[0].get_ydata().tolist() == [0.5, 0.7]
    assert plt.get_fignums() == [user.number]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # svg cannot show: pyplot warns
        shown = plot_learning_curves(res, show=True)
    assert plt.get_fignums() == [user.number, shown.number]   # show=True goes through pyplot
    assert matplotlib.get_backend() == "svg"
    print("ok")
    """
)


def test_plot_learning_curves_keeps_the_users_backend(tmp_path):
    png = tmp_path / "plots" / "curves.png"
    proc = subprocess.run(
        [sys.executable, "-c", PLOT_CODE, str(png)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("ok")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_area_under_curve_and_table():
    res = RoundResults(
        [{"round": 0, "num_labelled": 10, "test/accuracy": 0.5},
         {"round": 1, "num_labelled": 20, "test/accuracy": 0.7}]
    )
    assert abs(res.area_under_curve() - 0.6) < 1e-12
    assert res.to_table(["round", "test/accuracy"]).splitlines()[2] == "| 0 | 0.5000 |"
