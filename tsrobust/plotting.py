"""Figures that work in Jupyter, on Colab and offline in the static book.

Plotly's default notebook output (JSON only under papermill) is not rendered by the book, and its
CDN script is unreachable offline. :func:`show_plotly` emits a small HTML block that draws with the
page's ``Plotly`` when the book has loaded the vendored ``plotly.min.js``, and otherwise (Colab,
classic Jupyter) loads plotly.js of the installed plotly's version from its CDN.

:func:`live_figure` is the book's one pattern for a figure that a reader retrains with sliders
(chapter 1's Figure 1.4, and any chapter that adds such a figure): read its docstring before
writing another.
"""

from __future__ import annotations

import html
import io
import json
import uuid

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
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


LIVE_FIGURE_DPI = 80
"""Resolution of :func:`live_figure`'s images (a 9-inch-wide figure is 720 pixels wide)."""


def figure_png(fig, dpi: int = LIVE_FIGURE_DPI) -> bytes:
    """The PNG bytes of a matplotlib figure, which is then closed (it is not shown twice)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def seed_band(ax, curves, *args, color=None, start: int = 1, **kw):
    """The mean of ``curves`` (one per seed, each over x = start, start + 1, …) as a line, ± its
    standard deviation across seeds shaded when there are several; ``args``/``kw`` go to the
    line (style, label)."""
    curves = np.asarray(curves, dtype=float)
    mean = curves.mean(0)
    x = np.arange(start, start + len(mean))
    ax.plot(x, mean, *args, color=color, **kw)
    if len(curves) > 1:
        sd = curves.std(0, ddof=1)
        ax.fill_between(x, mean - sd, mean + sd, color=ax.lines[-1].get_color(), alpha=0.15,
                        lw=0)


def live_figure(draw, **controls) -> widgets.VBox:
    """A figure that a reader redraws with sliders: ``controls`` (name → an ipywidgets control,
    e.g. ``IntSlider``) above an :class:`ipywidgets.Image` holding ``draw(**values)``, a
    matplotlib figure, as a PNG (or one image per figure where ``draw`` returns a list of them).
    Moving a control calls ``draw`` with the controls' values and replaces the image(s).

    The pattern every interactive matplotlib figure of the book follows, and why:

    - **No** ``widgets.interactive`` / ``interact`` / ``widgets.Output``. A headless notebook
      client (papermill, nbclient) plays the front end of an ``Output`` widget itself: every
      display into one makes it send a ``comm_msg`` back to the kernel on the shell socket,
      while it awaits the cell's ``execute_reply`` on that same socket. That concurrent traffic
      is where a reply gets missed and a plain ``papermill`` run waits forever on an idle kernel
      (papermill sets no cell timeout). Here the kernel only ever *sends* widget state (the
      sliders, the image bytes); a client without a front end has nothing to answer, so the
      cell's messages are those of any display cell, whatever the client.
    - The first image is drawn when the cell runs, so the executed notebook, and the static book
      built from it, show the figure of the initial values (the image bytes are saved with the
      widget state) without a kernel; the sliders move only where a kernel is attached.
    - ipywidgets 7 (Colab's) and 8 both have ``Image``, ``VBox``/``HBox`` and ``observe``.
    - Keep ``draw`` cheap enough for a slider (seconds on a CPU) and make it return the figure
      (no ``plt.show()``); it is closed after it is drawn.
    """
    def figures() -> list:
        drawn = draw(**{name: c.value for name, c in controls.items()})
        return list(drawn) if isinstance(drawn, (list, tuple)) else [drawn]

    images = [widgets.Image(value=figure_png(fig), format="png",
                            layout=widgets.Layout(max_width="100%")) for fig in figures()]

    def redraw(_change=None):
        for image, fig in zip(images, figures()):
            image.value = figure_png(fig)

    for control in controls.values():
        control.observe(redraw, names="value")
    return widgets.VBox([widgets.HBox(list(controls.values())), *images])


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
