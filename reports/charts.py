"""Plotly figures in the house style: built with plotly.graph_objects (validated) and handed to the
page as JSON, where ``static/cims/charts.js`` draws them with the locally served plotly.js.

Every builder returns the figure as a dict; the data it plots is always also a ``Table`` of the
report, so the numbers can be read, exported and checked, not only looked at.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import plotly.graph_objects as go

COLORWAY = [
    "#0d6efd",
    "#20c997",
    "#fd7e14",
    "#6f42c1",
    "#dc3545",
    "#ffc107",
    "#0dcaf0",
    "#6c757d",
    "#198754",
    "#d63384",
]
FONT = "system-ui, -apple-system, 'Segoe UI', 'PingFang SC', 'Microsoft YaHei', sans-serif"


def _layout(*, y_title: str = "", x_title: str = "", height: int = 340, **extra) -> dict:
    layout = {
        "template": "none",
        "colorway": COLORWAY,
        "font": {"family": FONT, "size": 12},
        "margin": {"l": 60, "r": 20, "t": 20, "b": 50},
        "height": height,
        "legend": {"orientation": "h", "y": -0.2},
        "hovermode": "x unified",
        # Labels are names (2026-01, 2026-W09, 广东): plotly would read 2026-01 as a date and put
        # the bars on a calendar axis with ticks of its own.
        "xaxis": {"title": {"text": x_title}, "automargin": True, "type": "category"},
        "yaxis": {"title": {"text": y_title}, "automargin": True, "gridcolor": "#e9ecef", "rangemode": "tozero"},
        "separators": ".,",
    }
    layout.update(extra)
    return layout


def _labels(values: Sequence) -> list[str]:
    """Category names as plain text: plotly.js renders a subset of HTML in labels (<a href>, <b>),
    and a lost reason or lookup name is typed by users."""
    return [html.escape(str(value), quote=False) for value in values]


def _numbers(values: Sequence) -> list:
    return [None if value is None else float(value) for value in values]


def bar(
    categories: Sequence[str],
    series: Sequence[tuple[str, Sequence]],
    *,
    horizontal: bool = False,
    stacked: bool = False,
    y_title: str = "",
    height: int | None = None,
) -> dict:
    """Bars per category, one trace per ``(name, values)``; horizontal ones rank top-down."""
    traces = []
    for name, values in series:
        if horizontal:
            traces.append(go.Bar(y=_labels(categories), x=_numbers(values), name=str(name), orientation="h"))
        else:
            traces.append(go.Bar(x=_labels(categories), y=_numbers(values), name=str(name)))
    extra = {"barmode": "stack" if stacked else "group", "showlegend": len(series) > 1}
    if horizontal:
        extra["yaxis"] = {"autorange": "reversed", "automargin": True}
        extra["xaxis"] = {"title": {"text": y_title}, "gridcolor": "#e9ecef", "automargin": True}
        extra["hovermode"] = "y unified"
        height = height or max(260, 26 * len(categories) + 80)
    return go.Figure(traces, _layout(y_title=y_title, height=height or 340, **extra)).to_plotly_json()


def line(
    x: Sequence[str],
    series: Sequence[tuple[str, Sequence]],
    *,
    y_title: str = "",
    bars: Sequence[tuple[str, Sequence]] = (),
    y2_title: str = "",
) -> dict:
    """Lines over periods; ``bars`` drawn underneath, on a second axis when ``y2_title`` is given."""
    traces = [go.Bar(x=_labels(x), y=_numbers(values), name=str(name), opacity=0.55) for name, values in bars]
    for name, values in series:
        trace = go.Scatter(x=_labels(x), y=_numbers(values), name=str(name), mode="lines+markers")
        if y2_title:
            trace.update(yaxis="y2")
        traces.append(trace)
    extra = {"showlegend": len(traces) > 1}
    if y2_title:
        extra["yaxis2"] = {"title": {"text": y2_title}, "overlaying": "y", "side": "right", "rangemode": "tozero"}
        extra["margin"] = {"l": 60, "r": 60, "t": 20, "b": 50}
    return go.Figure(traces, _layout(y_title=y_title, **extra)).to_plotly_json()


def funnel(stages: Sequence[str], values: Sequence) -> dict:
    figure = go.Figure(
        go.Funnel(y=_labels(stages), x=_numbers(values), textinfo="value+percent initial"),
        _layout(height=300, hovermode="closest", margin={"l": 80, "r": 20, "t": 10, "b": 20}),
    )
    return figure.to_plotly_json()


def pie(labels: Sequence[str], values: Sequence, *, hole: float = 0.45) -> dict:
    figure = go.Figure(
        go.Pie(labels=_labels(labels), values=_numbers(values), hole=hole, sort=False),
        _layout(height=300, hovermode="closest", margin={"l": 10, "r": 10, "t": 10, "b": 10}),
    )
    return figure.to_plotly_json()
