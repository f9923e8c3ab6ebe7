"""matplotlib figures: a point's value over time, and the message rate.

The functions build a :class:`matplotlib.figure.Figure` directly (no ``pyplot`` state, no
GUI backend), so they work headless, in a report and in Jupyter (a Figure displays itself
there). Pass ``ax`` to draw into an existing axes instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from .frames import Source, as_frame, auto_freq
from .link import message_rate
from .points import point_timeline

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def _axes(ax: Axes | None, size: tuple[float, float]) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax  # type: ignore[return-value]
    from matplotlib.figure import Figure
    fig = Figure(figsize=size, layout="constrained")
    return fig, fig.add_subplot()


def _time_limits(ax: Axes, times: pd.Series | pd.DatetimeIndex) -> None:
    """Fit the time axis to the data with a small margin (matplotlib's default for a
    single instant, or a span of milliseconds, is a range of years)."""
    times = times.dropna()  # packets kept without a capture time have no place on the axis
    if not len(times):
        return
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    start, end = times.min(), times.max()
    pad = max((end - start) * 0.03, pd.Timedelta(milliseconds=1))
    ax.set_xlim(start - pad, end + pad)
    locator = AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))


BINARY_TYPES = frozenset(("M_SP_NA_1", "M_DP_NA_1"))
"""Point types of single and double points: states (0/1, 0-3), drawn on their own axis."""

Point = tuple[int, int] | tuple[int, int, str]


def top_points(source: Source, n: int = 6) -> list[tuple[int, int, str]]:
    """The ``n`` points ``(ca, ioa, point_type)`` with the most value changes (then most
    reports)."""
    t = point_timeline(source)
    if not len(t):
        return []
    g = t.groupby(["ca", "ioa", "point_type"])
    score = pd.DataFrame({"changes": g["value"].nunique(), "reports": g.size()})
    score = score.sort_values(["changes", "reports"], ascending=False)
    return [(int(ca), int(ioa), str(name)) for ca, ioa, name in score.index[:n]]


def plot_value_timeline(source: Source, points: list[Point] | None = None, *,
                        ax: Axes | None = None, max_points: int = 6,
                        mark_quality: bool = True) -> Figure:
    """Step plot of the values of ``points`` (``(ca, ioa)`` pairs, every point type at that
    address, or ``(ca, ioa, point_type)``; default: the ``max_points`` busiest). Single and
    double points (states) are drawn against a second y axis on the right, so a state is
    never read on the scale of a measured value at the same IOA. Reports with a bad quality
    flag are marked with a red x."""
    df = as_frame(source)
    if points is None:
        points = top_points(df, max_points)
    fig, ax = _axes(ax, (10, 4))
    t = point_timeline(df)
    states: Axes | None = None
    drawn = 0
    shown = []
    handles: list[Any] = []
    for point in points:
        ca, ioa = point[0], point[1]
        mine = (t["ca"] == ca) & (t["ioa"] == ioa) & t["value"].notna() & t["time"].notna()
        if len(point) > 2:
            mine &= t["point_type"] == point[2]  # type: ignore[misc]
        for type_name, p in t[mine].groupby("point_type", sort=True):
            binary = type_name in BINARY_TYPES
            if binary and states is None:
                states = ax.twinx()
                states.set_ylabel("state (single/double points)")
            target = states if binary else ax
            times = p["time"].dt.tz_convert("UTC").dt.tz_localize(None)
            label = f"CA {ca} IOA {ioa} ({type_name})" + (" [state, right axis]" if binary
                                                            else "")
            handles += target.step(times, p["value"], where="post", marker=".", label=label,
                                   linestyle="--" if binary else "-")
            shown.append(times)
            drawn += 1
            if mark_quality:
                bad = (p["quality"] != "").to_numpy()
                if bad.any():
                    target.plot(times[bad], p.loc[bad, "value"], "x", color="red",
                                markersize=8)
    ax.set_title("Value timeline" + ("" if drawn else " (no values)"))
    ax.set_xlabel("time (UTC)")
    ax.set_ylabel("value")
    ax.grid(True, alpha=0.3)
    if drawn:
        ax.legend(handles=handles, fontsize="small", loc="best")
        _time_limits(ax, pd.concat(shown))
    fig.autofmt_xdate()
    return fig


def plot_message_rate(source: Source, freq: str | None = None, by: str = "apci", *,
                      ax: Axes | None = None) -> Figure:
    """APDUs per ``freq`` bin (default: chosen for about 300 bins), one line per value of
    ``by`` (``apci``: I/S/U; or ``direction``, ``type_name``...)."""
    df = as_frame(source)
    if freq is None:
        freq = auto_freq(df["time"].dropna())
    rate = message_rate(df, freq, by)
    fig, ax = _axes(ax, (10, 3.5))
    if len(rate):
        times = rate.index.tz_convert("UTC").tz_localize(None)
        # markers too when there are few bins: a lone bin would draw no line at all
        marker = "." if len(rate) < 60 else None
        for column in rate.columns:
            ax.plot(times, rate[column].to_numpy(), drawstyle="steps-post", marker=marker,
                    label=str(column))
        ax.legend(fontsize="small", loc="upper right")
        _time_limits(ax, times.append(times + pd.Timedelta(freq)))  # bins have a width
    ax.set_title(f"Message rate (APDUs per {freq})")
    ax.set_xlabel("time (UTC)")
    ax.set_ylabel("APDUs")
    ax.grid(True, alpha=0.3)
    fig.autofmt_xdate()
    return fig


def figure_png(fig: Any, dpi: int = 100) -> bytes:
    """The figure as PNG bytes (Agg canvas, no display needed)."""
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()
