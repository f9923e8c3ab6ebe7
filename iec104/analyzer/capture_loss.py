"""Findings that the capture's own losses explain are attributed to the capture, not a device.

Theory of operation
-------------------
A capture that lost octets of one direction shows the loss only when the next captured
segment of that direction arrives (the reassembler's gap row, tshark's "previous segment
not captured"). Before that point the peer may already acknowledge the I-frames that were
in the lost octets: :mod:`.link` then sees an N(R) "acknowledging I-frames never sent"
(``bad_ack``) and would accuse a healthy master. On emre_iec104-baselines-seq-gaps.pcap the
capture lost 1,376 octets of the outstation's direction before frame 18, the outstation's
N(S) jumps 3 -> 33 there, and the master's N(R) 13, 25 and 33 at frames 14-17 acknowledge
exactly those frames.

:func:`attribute_capture_loss` re-examines every ``bad_ack``: if the acknowledged direction
has a capture gap after its last captured I-frame before the acknowledgement, and the first
I-frame captured after that gap has an N(S) at or beyond the acknowledged N(R) (so every
frame acknowledged is one the capture lost), the finding becomes ``capture_lost`` with the
capture as its actor and a detail naming the gap. Every other ``bad_ack`` stays one.
"""

from __future__ import annotations

import pandas as pd

from ..codec import seq_diff
from .frames import apdus, gaps

__all__ = ["CAPTURE_ACTOR", "attribute_capture_loss"]

CAPTURE_ACTOR = "capture"
"""The ``actor`` of a finding the capture's losses explain."""

_PEER = {"c2s": "s2c", "s2c": "c2s"}


def attribute_capture_loss(findings: pd.DataFrame, df: pd.DataFrame) -> pd.DataFrame:
    """``findings`` of :func:`~.link.link_findings` with the ``bad_ack`` rows that a capture
    gap explains turned into ``capture_lost`` rows (see the module docstring)."""
    suspects = findings.index[findings["kind"] == "bad_ack"]
    if not len(suspects):
        return findings
    holes = gaps(df)
    if not len(holes):
        return findings
    heads = apdus(df)
    frames = heads[heads["apci"] == "I"]
    order = frames.index.to_numpy()  # file order: a gap row precedes the APDUs after it
    hole_order = holes.index.to_numpy()
    out = findings.copy()
    for index in suspects:
        row = out.loc[index]
        acked = _PEER.get(str(row["direction"]))
        seen = heads.index[(heads["stream"] == row["stream"]) & (heads["apdu"] == row["apdu"])]
        if not len(seen) or acked is None:
            continue
        mine = ((frames["stream"] == row["stream"]) & (frames["direction"] == acked)).to_numpy()
        before = mine & (order < seen[0])
        last_ssn = int(frames["ssn"].to_numpy()[before][-1]) if before.any() else None
        lost = ((holes["stream"] == row["stream"]) & (holes["direction"] == acked)).to_numpy()
        if before.any():
            lost &= hole_order > order[before][-1]
        if not lost.any():
            continue
        hole = holes.iloc[lost.argmax()]
        after = mine & (order > hole.name)
        if not after.any():
            continue
        next_ssn = int(frames["ssn"].to_numpy()[after.argmax()])
        expected, got = int(row["expected"]), int(row["got"])
        if seq_diff(next_ssn, expected) < seq_diff(got, expected):
            continue  # the frames after the hole do not cover what was acknowledged
        jump = (f"N(S) jumps {last_ssn} -> {next_ssn}" if last_ssn is not None else
                f"N(S) {next_ssn} after it")
        out.loc[index, "kind"] = "capture_lost"
        out.loc[index, "detail"] = (
            f"N(R) {got} acknowledges I-frames the capture lost, not frames never sent: the "
            f"capture lost octets of {acked} before frame {int(hole['frame'])} "
            f"({hole['error']}; {jump}); {row['actor']} is not at fault")
        out.loc[index, "actor"] = CAPTURE_ACTOR
    return out
