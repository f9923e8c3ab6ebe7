"""A bounded, seeded fuzz run in the test suite (issue 10, "keep it fixed").

:mod:`tests.support.fuzz` mutates the bundled (and, when present, public) captures and their
APDUs and feeds them to the codec, the framer, the capture dissector (octet, pcap record,
pcapng block and TCP payload damage), the filter parser and the command line. Every case
must end in a result or a documented error; anything else is a crash, reported with the
target, seed and case index that :func:`tests.support.fuzz.replay` reproduces. About a
minute in all; ``python scripts/fuzz.py`` runs millions of cases (figures in the README).
"""

from __future__ import annotations

import pytest

from tests.support import fuzz

SEED = 104
# cases per target: about a minute on one CPU of the CI machine in total
CASES = {"codec": 40_000, "framer": 10_000, "dissect": 4_000, "ipfrag": 3_000, "filter": 3_000,
         "cli": 60}
# outcomes each target must reach (the run is not vacuous)
EXPECTED = {
    "codec": {"decoded", "DecodeError"},
    "framer": {"frames only", "malformed octets"},
    "dissect": {"whole", "damaged part-way", "time out of range", "CaptureError"},
    "ipfrag": {"reassembled", "incomplete"},
    "filter": {"compiled", "FilterError"},
    "cli": {"exit 0", "exit 1", "exit 2"},
}


@pytest.mark.parametrize("target", list(CASES))
def test_fuzz(target: str) -> None:
    result = fuzz.run(target, SEED, CASES[target])
    crashes = "\n".join(f"  replay('{t}', {s}, {i}): {error}" for t, s, i, error in
                        result.crashes[:20])
    assert not result.crashes, (f"{len(result.crashes)} of {CASES[target]} {target} cases "
                                f"crashed (tests.support.fuzz):\n{crashes}")
    seen = {outcome for (t, outcome), n in result.outcomes.items() if t == target}
    assert EXPECTED[target] <= seen, seen


def test_a_crash_is_reported_and_replayable(monkeypatch: pytest.MonkeyPatch) -> None:
    """The harness does catch and name what it is for (a target that fails sometimes)."""
    def flaky(rng: object, corpus: object) -> str:
        if rng.random() < 0.5:  # type: ignore[attr-defined]
            raise IndexError("boom")
        return "ok"
    monkeypatch.setitem(fuzz.TARGETS, "flaky", flaky)
    result = fuzz.run("flaky", 7, 50)
    assert result.cases["flaky"] == 50 and 10 < len(result.crashes) < 40
    target, seed, index, error = result.crashes[0]
    assert (target, seed, error) == ("flaky", 7, "IndexError: boom")
    with pytest.raises(IndexError):
        fuzz.replay(target, seed, index)
