import plotly.graph_objects as go

from tsrobust.plotting import PlotlyFigure


def test_plotly_html_draws_with_the_page_plotly_and_escapes_script_end():
    fig = go.Figure(go.Scatter(x=[1, 2], y=[3, 4], name="</script><b>x"))
    html = PlotlyFigure(fig).html()
    assert "if (window.Plotly) { draw(); return; }" in html
    assert html.count("</script>") == 1  # only the block's own end tag
    bundle = PlotlyFigure(fig)._repr_mimebundle_()
    assert bundle["application/vnd.plotly.v1+json"]["data"][0]["name"] == "</script><b>x"
