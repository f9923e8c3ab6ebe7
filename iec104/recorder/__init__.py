"""The recorder: a transparent MITM proxy and live capture, logging into Parquet.

* :class:`Proxy` (asyncio) / :class:`BackgroundProxy` (own thread, for notebooks): forward
  IEC 104 traffic between masters and an outstation unchanged and log both directions,
  decoded, in the schema of :mod:`iec104.records.schema`; optional :class:`Rule` objects
  drop or rewrite chosen ASDUs (sequence numbers are kept consistent).
* :class:`LiveCapture`: sniff an interface (dumpcap) through the dissector's TCP
  reassembly into the same kind of log, optionally keeping the raw pcapng.
* :class:`LogWriter` / :class:`JournaledParquetSink` / :func:`recover`: the crash-safe,
  rotating Parquet directory both write (``pandas.read_parquet(directory)`` reads it).

From a notebook or a script::

    from iec104.recorder import BackgroundProxy, LiveCapture, Rule

    proxy = BackgroundProxy("0.0.0.0:2405", "10.0.0.7:2404", "proxy-log",
                            rules=[Rule("drop", type_id=45, ca=1, ioa=100)]).start()
    ...                                  # masters connect to port 2405
    df = proxy.dataframe()               # everything logged so far
    proxy.stop()

    with LiveCapture("eth0", "capture-log", ports=[2404], pcapng_dir="capture-log/_pcapng") as cap:
        ...
        df = cap.dataframe()

In asyncio code: ``async with Proxy(...) as proxy: ...``. Command line equivalents:
``iec104 proxy`` and ``iec104 capture``.

Loss bounds: SIGINT/SIGTERM (or ``stop()``) write everything. A crash or SIGKILL loses the
rows of the last ``flush_seconds`` (default 1 s, at most ``flush_rows``) plus any decode
backlog (the proxy's ``max_backlog`` and the pipe to its logger process, normally empty);
the open segment of the directory
is recovered by :func:`recover`, which also runs when the next recorder opens the
directory.
"""

from ..records.journal import JournaledParquetSink, read_journal, recover
from .live import LiveCapture, LiveCaptureError
from .logwriter import LogWriter, LogWriterError
from .proxy import BackgroundProxy, Proxy, parse_address
from .rules import Rule, RuleError, parse_rule

__all__ = ["BackgroundProxy", "JournaledParquetSink", "LiveCapture", "LiveCaptureError",
           "LogWriter", "LogWriterError", "Proxy", "Rule", "RuleError", "parse_address",
           "parse_rule", "read_journal", "recover"]
