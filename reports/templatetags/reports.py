from __future__ import annotations

from django import template
from django.utils.html import json_script
from plotly.utils import PlotlyJSONEncoder

from reports.registry import display

register = template.Library()


@register.filter
def shown(value, kind: str = "number") -> str:
    """A figure or cell as the page shows it (reports.registry.display)."""
    return display(value, kind)


@register.simple_tag
def change_class(change, lower_is_better: bool = False) -> str:
    if change is None or change == 0:
        return "text-secondary"
    good = (change > 0) != bool(lower_is_better)
    return "text-success" if good else "text-danger"


@register.simple_tag
def chart_json(chart, prefix: str = "chart"):
    """The chart's figure as <script type="application/json" id="PREFIX-KEY"> for static/cims/charts.js."""
    return json_script(chart.figure, f"{prefix}-{chart.key}", encoder=PlotlyJSONEncoder)


@register.simple_tag
def cell(table, index: int, value) -> str:
    return display(value, table.column_kind(index))
