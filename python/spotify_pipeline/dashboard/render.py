"""HTML for the dashboard: the live page (served by the Airflow plugin, data fetched from its JSON
endpoint) and the static export (one self-contained file: chart library and data inlined)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from markupsafe import Markup

if TYPE_CHECKING:
    import jinja2

CHART_JS = "chart.umd.min.js"


def asset(name: str) -> str:
    return resources.files("spotify_pipeline.dashboard").joinpath("static", name).read_text(encoding="utf-8")


@cache
def _template() -> jinja2.Template:
    import jinja2

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    return env.from_string(resources.files("spotify_pipeline.dashboard").joinpath("templates", "dashboard.html").read_text(encoding="utf-8"))


def script_json(value: Any) -> Markup:
    """JSON that is safe inside a <script> element (no ``</script>``, no HTML comment openers)."""
    text = json.dumps(value, separators=(",", ":"))
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


def render_page(chart_js_url: str, data_url: str) -> str:
    """The live page: loads the chart library and the data from the plugin's own URLs."""
    return _template().render(chart_js_inline=None, chart_js_url=chart_js_url, data_json=None, data_url_json=script_json(data_url))


def render_static(data: dict[str, Any]) -> str:
    """One self-contained HTML file: nothing is loaded from anywhere when it is opened."""
    lib = asset(CHART_JS)
    if "</script" in lib.lower():  # cannot happen with Chart.js today; never emit a broken page
        raise ValueError(f"{CHART_JS} contains '</script' and cannot be inlined")
    data = {**data, "exported_at": datetime.now(UTC).isoformat(timespec="seconds")}
    return _template().render(chart_js_inline=Markup(lib), chart_js_url=None, data_json=script_json(data), data_url_json=script_json(None))
