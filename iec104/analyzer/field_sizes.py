"""Field-size profiles per connection direction: what the dissector decoded each with.

:func:`profiles` reads the ``profile`` and ``profile_confidence`` columns of I-frame rows
(written by :mod:`iec104.records.profiles`): one row per TCP connection and direction,
with the profile, the detection's confidence and how the profile was chosen.
"""

from __future__ import annotations

import pandas as pd

from .frames import Source, apdus, as_frame

COLUMNS = ["stream", "direction", "src", "dst", "profile", "confidence", "basis", "i_frames"]
LOW_CONFIDENCE = 0.5
"""Below this a detected profile rests on plausibility or a short sample: check it."""


def _basis(confidence: float | None) -> str:
    if confidence is None or pd.isna(confidence):
        return "given"
    if confidence == 0:
        return "assumed: too few I-frames to detect"
    return "detected" if confidence >= LOW_CONFIDENCE else "detected, unsure"


def profiles(source: Source) -> pd.DataFrame:
    """One row per connection direction that sent I-frames.

    Columns: ``stream, direction, src, dst`` (``host:port``), ``profile`` ('COT/CA/IOA'),
    ``confidence`` (null when given), ``basis`` ('detected', 'detected, unsure' below
    :data:`LOW_CONFIDENCE`, 'assumed: too few I-frames to detect' for the 2/2/3 fallback,
    'given' by ``--profile``) and ``i_frames``.
    """
    a = apdus(as_frame(source))
    if "profile" not in a.columns:  # Parquet written before the column existed
        return pd.DataFrame(columns=COLUMNS)
    i = a[a["apci"].eq("I") & a["profile"].notna()]
    rows = []
    for (stream, direction), g in i.groupby(["stream", "direction"], sort=True):
        first = g.iloc[0]
        confidence = first["profile_confidence"]
        rows.append({"stream": int(stream), "direction": direction,
                     "src": f"{first['src']}:{first['sport']}",
                     "dst": f"{first['dst']}:{first['dport']}",
                     "profile": first["profile"],
                     "confidence": None if pd.isna(confidence) else round(float(confidence), 3),
                     "basis": _basis(confidence), "i_frames": len(g)})
    return pd.DataFrame(rows, columns=COLUMNS)
