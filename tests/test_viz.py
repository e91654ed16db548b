"""minivlm.viz: panels laid out in rows, one colour scale per attention figure (chapters 7-8)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from minivlm.viz import panel_grid, plot_word_attention  # noqa: E402


def test_panel_grid_wraps_into_rows_of_five_and_hides_the_spares():
    fig, axes = panel_grid(17)
    assert len(axes) == 17
    grid = fig.axes
    assert len(grid) == 20 and sum(ax.get_visible() for ax in grid) == 17  # 4 rows of 5
    width, _ = fig.get_size_inches()
    assert width / 5 >= 2.0  # each panel keeps its size however many words there are
    plt.close(fig)


def test_panel_grid_draws_into_a_given_figure():
    fig, axes = panel_grid(3, figure=Figure())
    assert len(axes) == 3 and axes[0].figure is fig


def test_word_attention_plot_has_one_colour_bar_on_one_scale():
    image = torch.zeros(3, 32, 32)
    maps = torch.rand(4, 4, 4)
    axes = plot_word_attention(image, ["a", "red", "circle", "[EOS]"], maps)
    fig = axes[0].figure
    bars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(bars) == 1
    limits = {ax.get_images()[-1].get_clim() for ax in axes[1:]}
    assert limits == {(0.0, float(maps.max()))}
    plt.close(fig)
