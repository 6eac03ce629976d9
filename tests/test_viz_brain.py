"""brainllm_utils.viz surface maps: the static figures show the cortex, the 3-D view is offline."""

from __future__ import annotations

import html
import re

import numpy as np
import pytest

from brainllm_utils import viz

N5 = viz.FSAVERAGE5_VERTICES


@pytest.fixture(autouse=True)
def _agg():
    import matplotlib

    matplotlib.use("Agg")
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


def _map(rng, n=N5, frac=0.1):
    """lh-then-rh values, NaN except on a random ``frac`` of the vertices (an FDR map)."""
    values = rng.uniform(0.1, 0.4, 2 * n)
    values[rng.random(2 * n) > frac] = np.nan
    return values


def _render(values, **kw):
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(4, 3), dpi=60)
    ax = viz.surface_axes(fig, 1, 1, 1)
    viz.plot_surface(values, hemi="left", view="lateral", ax=ax, colorbar=False, **kw)
    fig.canvas.draw()
    rgb = np.asarray(fig.canvas.buffer_rgba())[..., :3].astype(float)
    plt.close(fig)
    return rgb


def _brain_pixels(rgb):
    return rgb[(rgb < 250).any(-1)]  # not the white page


def test_nan_vertices_show_the_cortex_not_black(rng):
    """The encoding group map was a black brain: NaN (not significant) drawn as 0 in
    inferno's black. Now a mostly-NaN map draws the grey sulcal shading."""
    rgb = _brain_pixels(_render(_map(rng), vmin=0, vmax=0.4, cmap="inferno"))
    assert len(rgb) > 1000
    grey = (np.ptp(rgb, axis=1) < 12) & (rgb.mean(1) > 40)
    black = rgb.max(1) < 25
    assert grey.mean() > 0.6, f"only {grey.mean():.0%} of the brain is grey cortex"
    assert black.mean() < 0.1, f"{black.mean():.0%} of the brain is black"
    # the folds are visible: the grey varies (sulci darker than gyri)
    assert rgb[grey].mean(1).std() > 15


def test_values_are_coloured_and_below_vmin_show_the_cortex(rng):
    full = rng.uniform(0.2, 0.4, 2 * N5)
    coloured = _brain_pixels(_render(full, vmin=0, vmax=0.4))
    assert (np.ptp(coloured, axis=1) > 40).mean() > 0.8  # inferno colours, not grey
    negative = _brain_pixels(_render(-full, vmin=0, vmax=0.4))
    cortex = (np.ptp(negative, axis=1) < 12) & (negative.mean(1) > 40)
    assert cortex.mean() > 0.9  # nothing in range: all grey cortex (not inferno's black)


def test_default_one_sided_colormap_has_no_black_end():
    cmap = viz._brain._one_sided_cmap()
    assert min(cmap(0.0)[:3]) >= 0 and max(cmap(0.0)[:3]) > 0.2
    import matplotlib

    assert max(matplotlib.colormaps["inferno"](0.0)[:3]) < 0.05  # the reason for it


def test_plot_surface_views_all_nan_is_bare_cortex():
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(6, 2))
    axes = [viz.surface_axes(fig, 1, 2, i + 1) for i in range(2)]
    viz.plot_surface_views(np.full(2 * N5, np.nan), axes, views=viz.SURFACE_VIEWS[:2])


# ------------------------------------------------------------------------- the interactive view
def test_view_surface_map_is_self_contained_html(rng):
    m = _map(rng)
    view = viz.view_surface_map(m[:N5], m[N5:], title="group map")
    page = view.html
    # plotly.js and jQuery inlined; no script, stylesheet or icon from the network
    assert "Plotly" in page and len(page) > 1_000_000
    assert not re.search(r"<script[^>]+src=", page)
    assert not re.search(r"<link[^>]+href=[\"']https?:", page)
    frame = view._repr_mimebundle_()["text/html"]
    assert frame.startswith("<iframe srcdoc=") and 'width="760"' in frame
    assert "plotly" in html.unescape(frame).lower()


def test_view_surface_map_colours_and_range(rng):
    import json

    m = _map(rng, frac=0.2)
    view = viz.view_surface_map(m[:N5], m[N5:])
    info = json.loads(re.search(r"var surfaceMapInfo = (\{.*?\});\n", view.html, re.S).group(1))
    finite = np.abs(m[np.isfinite(m)])
    assert info["cmin"] == pytest.approx(0.0)  # one-sided: 0 … vmax
    assert info["title_fontsize"] == 14  # set although nilearn's view_surf drops it
    assert info["cmax"] == pytest.approx(np.percentile(finite, 99), rel=1e-5)
    colours = np.array(info["vertexcolor_both"])
    assert colours.size == 2 * N5
    # the NaN vertices keep the background (grey) colour, the others get the colormap
    def grey(c):
        r, g, b = (int(c[i:i + 2], 16) for i in (1, 3, 5))
        return max(r, g, b) - min(r, g, b) < 10
    is_grey = np.array([grey(c) for c in colours])
    np.testing.assert_array_equal(is_grey, ~np.isfinite(m))

    signed = np.where(np.isfinite(m), m - 0.25, np.nan)
    info = json.loads(re.search(r"var surfaceMapInfo = (\{.*?\});\n",
                                viz.view_surface_map(signed[:N5], signed[N5:]).html, re.S).group(1))
    assert info["cmin"] == pytest.approx(-info["cmax"])  # negative values: symmetric


def test_view_surface_map_takes_finer_meshes_on_their_fsaverage5_vertices(rng):
    fine = rng.normal(size=40962)
    a = viz.view_surface_map(fine, fine, threshold=1.0)
    b = viz.view_surface_map(fine[:N5], fine[:N5], threshold=1.0)
    assert a.html == b.html


@pytest.mark.parametrize("lh, rh, kw, match", [
    (np.zeros(10000), np.zeros(10000), {}, "10,000 vertices, not one hemisphere"),
    (np.ones(N5), np.ones(40962), {}, "same fsaverage mesh"),
    (np.ones((N5, 2)), np.ones(N5), {}, "1-D"),
    (np.full(N5, np.nan), np.zeros(N5), {}, "no finite non-zero"),
    (np.ones(N5), np.ones(N5), {"threshold": 0}, "threshold=0"),
    (np.ones(N5), np.ones(N5), {"threshold": "high"}, "threshold='high'"),
    (np.ones(N5), np.ones(N5), {"vmax": -1.0}, "vmax=-1.0"),
    (np.ones(N5), np.ones(N5), {"threshold": 2.0, "vmax": 1.0}, "nothing would be coloured"),
    (np.ones(N5), np.ones(N5), {"width": 10}, "width=10"),
])
def test_view_surface_map_validates(lh, rh, kw, match):
    with pytest.raises(ValueError, match=match):
        viz.view_surface_map(lh, rh, **kw)


def test_view_surface_map_refuses_text():
    with pytest.raises(TypeError, match="map_lh"):
        viz.view_surface_map(np.array(["a"] * N5), np.ones(N5))
