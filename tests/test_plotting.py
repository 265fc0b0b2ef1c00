import plotly.graph_objects as go
import pytest

from tsrobust.plotting import PlotlyFigure


def test_plotly_html_draws_with_the_page_plotly_and_escapes_script_end():
    fig = go.Figure(go.Scatter(x=[1, 2], y=[3, 4], name="</script><b>x"))
    html = PlotlyFigure(fig).html()
    assert "if (window.Plotly) { draw(); return; }" in html
    assert html.count("</script>") == 1  # only the block's own end tag
    bundle = PlotlyFigure(fig)._repr_mimebundle_()
    assert bundle["application/vnd.plotly.v1+json"]["data"][0]["name"] == "</script><b>x"


def test_frame_slider_shows_one_frame_at_a_time():
    import pytest

    from tsrobust.plotting import add_frame_slider

    fig = go.Figure(go.Scatter(x=[0], y=[0], name="fixed"))
    frames = [[go.Scatter(x=[i], y=[i]), go.Scatter(x=[i], y=[-i])] for i in range(3)]
    add_frame_slider(fig, frames, ["a", "b", "c"], prefix="k = ", titles=["A", "B", "C"])
    steps = fig.layout.sliders[0].steps
    assert [s.label for s in steps] == ["a", "b", "c"]
    assert steps[1].args[0]["visible"] == [True, False, False, True, True, False, False]
    assert steps[2].args[1]["title"] == "C" and fig.layout.title.text == "A"
    assert [t.visible for t in fig.data] == [None, True, True, False, False, False, False]
    with pytest.raises(ValueError, match="one label per frame"):
        add_frame_slider(go.Figure(), frames, ["a"], prefix="")


def test_plain_log_ticks_label_a_short_log_axis_in_plain_numbers():
    import matplotlib.pyplot as plt

    from tsrobust.plotting import plain_log_ticks

    fig, ax = plt.subplots()
    ax.loglog([0.02, 0.2], [0.1, 0.5])
    plain_log_ticks(ax.xaxis)
    fig.canvas.draw()
    labels = {t.get_text() for t in ax.get_xticklabels() if t.get_visible()}
    assert {"0.02", "0.05", "0.1", "0.2"} <= labels
    plt.close(fig)


def _widget_tree(widget):
    yield widget
    for child in getattr(widget, "children", ()):
        yield from _widget_tree(child)


def test_live_figure_redraws_on_a_control_and_holds_no_output_widget():
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    from tsrobust.plotting import live_figure

    calls = []

    def draw(width, seed):
        calls.append((width, seed))
        fig, ax = plt.subplots(figsize=(2, 2))
        ax.set_title(f"{width} {seed}")
        return fig

    width = widgets.IntSlider(value=2, min=1, max=5)
    seed = widgets.IntSlider(value=0, min=0, max=3)
    open_before = len(plt.get_fignums())
    fig = live_figure(draw, width=width, seed=seed)
    image = fig.children[1]
    assert calls == [(2, 0)] and bytes(image.value).startswith(b"\x89PNG")  # drawn once at display
    first = bytes(image.value)
    width.value = 4
    assert calls[-1] == (4, 0) and bytes(image.value) != first  # a control redraws the image
    seed.value = 3
    assert calls[-1] == (4, 3)
    assert len(plt.get_fignums()) == open_before  # every drawn figure was closed
    # a headless notebook client answers Output widgets on the kernel's shell socket, the
    # traffic that stalls a plain papermill run; a live figure has none
    assert not any(isinstance(w, widgets.Output) for w in _widget_tree(fig))


def test_live_figure_shows_one_image_per_figure_when_draw_returns_several():
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    from tsrobust.plotting import live_figure

    def draw(n):
        figs = []
        for k in range(3):
            fig, ax = plt.subplots(figsize=(2, 2))
            ax.set_title(f"{n} {k}")
            figs.append(fig)
        return figs

    n = widgets.IntSlider(value=1, min=1, max=5)
    box = live_figure(draw, n=n)
    images = box.children[1:]
    assert len(images) == 3 and all(isinstance(i, widgets.Image) for i in images)
    first = [bytes(i.value) for i in images]
    assert len(set(first)) == 3  # three different figures, in order
    n.value = 4
    assert all(bytes(i.value) != f for i, f in zip(images, first))


def test_seed_band_draws_the_mean_and_shades_one_sd_only_with_several_seeds():
    import matplotlib.pyplot as plt

    from tsrobust.plotting import seed_band

    fig, ax = plt.subplots()
    seed_band(ax, [[1.0, 2.0, 3.0], [3.0, 4.0, 5.0]], "--", color="r", label="two", start=0)
    x, y = ax.lines[-1].get_data()
    assert list(x) == [0, 1, 2] and list(y) == [2.0, 3.0, 4.0]
    (band,) = ax.collections
    lo, hi = band.get_paths()[0].vertices[:, 1].min(), band.get_paths()[0].vertices[:, 1].max()
    assert lo == pytest.approx(2.0 - 2 ** 0.5) and hi == pytest.approx(4.0 + 2 ** 0.5)
    seed_band(ax, [[1.0, 1.0]], color="b")  # one seed: a line from x = 1, nothing shaded
    assert list(ax.lines[-1].get_data()[0]) == [1, 2] and len(ax.collections) == 1
    plt.close(fig)
