"""Figures that work in Jupyter, on Colab and offline in the static book.

Plotly's default notebook output (JSON only under papermill) is not rendered by the book, and its
CDN script is unreachable offline. :func:`show_plotly` emits a small HTML block that draws with the
page's ``Plotly`` when the book has loaded the vendored ``plotly.min.js``, and otherwise (Colab,
classic Jupyter) loads plotly.js of the installed plotly's version from its CDN.
"""

from __future__ import annotations

import html
import json
import uuid

from matplotlib import ticker

PLOTLY_CDN = "https://cdn.plot.ly/plotly-{version}.min.js"

_LOADER = """<div id="{div}" class="tsrobust-plotly" style="width:100%;height:{height}px;"></div>
<script type="text/javascript">
(function () {{
  var fig = {spec};
  function draw() {{ window.Plotly.newPlot("{div}", fig); }}
  if (window.Plotly) {{ draw(); return; }}
  if (window.require && window.define && window.define.amd) {{
    window.require.config({{paths: {{tsrobust_plotly: "{cdn_noext}"}}}});
    window.require(["tsrobust_plotly"], function (P) {{ window.Plotly = P; draw(); }});
    return;
  }}
  var s = document.createElement("script");
  s.src = "{cdn}";
  s.onload = draw;
  document.head.appendChild(s);
}})();
</script>"""


class PlotlyFigure:
    """Display wrapper: HTML for the book and Colab, plotly's own mimetype for JupyterLab."""

    def __init__(self, fig):
        self.fig = fig

    def html(self) -> str:
        from plotly.offline import get_plotlyjs_version

        cdn = PLOTLY_CDN.format(version=get_plotlyjs_version())
        spec = self.fig.to_json()
        # A JSON string inside <script> must not close the tag.
        spec = spec.replace("</", "<\\/")
        height = self.fig.layout.height or 480
        return _LOADER.format(
            div=f"plotly-{uuid.uuid4().hex[:12]}", spec=spec, cdn=html.escape(cdn),
            cdn_noext=html.escape(cdn[: -len(".js")]), height=int(height),
        )

    def _repr_mimebundle_(self, include=None, exclude=None):
        return {
            "text/html": self.html(),
            "application/vnd.plotly.v1+json": json.loads(self.fig.to_json()),
        }


def show_plotly(fig):
    """Display a plotly figure so that it renders in Jupyter, Colab and the static book offline."""
    from IPython.display import display

    display(PlotlyFigure(fig))


def add_frame_slider(fig, frames, labels, *, prefix: str, titles=None):
    """Add a slider to the plotly figure ``fig`` that shows one frame at a time.

    ``frames`` is a list of frames, each a list of plotly traces; the traces already in ``fig``
    stay visible in every frame. ``labels`` names each slider position, ``prefix`` precedes the
    current label, and ``titles`` (optional) is the figure title of each frame. Works offline in
    the static book (:func:`show_plotly`): switching frames only toggles trace visibility, so no
    kernel is needed. Returns ``fig``."""
    frames, labels = list(frames), list(labels)
    if len(frames) != len(labels) or not frames:
        raise ValueError(f"need one label per frame and at least one frame; got {len(frames)} "
                         f"frames and {len(labels)} labels")
    if titles is not None and len(titles) != len(frames):
        raise ValueError("need one title per frame")
    n_fixed = len(fig.data)
    sizes = [len(traces) for traces in frames]
    for i, traces in enumerate(frames):
        for trace in traces:
            trace.visible = i == 0
            fig.add_trace(trace)
    steps, start = [], n_fixed
    for i, (label, size) in enumerate(zip(labels, sizes)):
        visible = [True] * n_fixed + [False] * sum(sizes)
        visible[start:start + size] = [True] * size
        start += size
        args = [{"visible": visible}] + ([{"title": titles[i]}] if titles is not None else [])
        steps.append(dict(method="update", args=args, label=str(label)))
    if titles is not None:
        fig.update_layout(title=titles[0])
    fig.update_layout(sliders=[dict(active=0, steps=steps, currentvalue=dict(prefix=prefix),
                                    pad=dict(t=40))])
    return fig


def plain_log_ticks(axis) -> None:
    """Label a matplotlib log axis (``ax.xaxis`` or ``ax.yaxis``) at 1, 2 and 5 × powers of ten
    in plain numbers: its default labels overlap, or all but vanish, when the data span less than
    a decade."""
    axis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(ticker.NullFormatter())
