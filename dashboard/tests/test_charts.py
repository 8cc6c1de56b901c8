"""Chart geometry: pure functions, checked on values."""

from dashboard import charts, wording


def test_stacked_bars_stack_series_and_scale_to_a_round_maximum():
    chart = charts.stacked_bars(["a", "b"], {"verified": [3, 0], "restricted": [4, 1]})
    # 7 is the tallest stack; the axis goes to 10.
    assert [t["label"] for t in chart["y_ticks"]] == ["0", "5", "10"]
    first = [b for b in chart["bars"] if b["title"].startswith("a:")]
    assert len(first) == 2
    plot_height = charts.HEIGHT - charts.PAD_BOTTOM - charts.PAD_TOP
    assert round(sum(b["h"] for b in first), 1) == round(plot_height * 0.7, 1)
    assert chart["empty"] is False


def test_lines_break_on_missing_values_and_dot_every_value():
    chart = charts.lines(["1", "2", "3"], {"p95": [10, None, 20]})
    (path,) = chart["paths"]
    # Two separate "move" commands: no line across the gap.
    assert path["d"].count("M") == 2 and "L" not in path["d"]
    assert len(path["dots"]) == 2


def test_an_empty_chart_says_so():
    assert charts.lines(["1"], {"x": [None]})["empty"] is True
    assert charts.stacked_bars(["1"], {"x": [0]})["empty"] is True


def test_axis_labels_and_tooltips_are_for_people():
    chart = charts.stacked_bars(["09:00"], {"verified": [1200]})
    # 1,200 rounds the axis up to 2,000: "1k" half way, never "1e+03".
    assert [t["label"] for t in chart["y_ticks"]] == ["0", "1k", "2k"]
    assert chart["bars"][0]["title"] == "09:00: 1,200 verified"
    assert chart["legend"][0]["name"] == "verified"


def test_one_series_bars_name_their_unit_not_count():
    chart = charts.simple_bars(["≤5", "≤10", "more"], [0, 3, 1], count=wording.decisions)
    assert [b["title"] for b in chart["bars"]] == ["≤10: 3 decisions", "more: 1 decision"]
