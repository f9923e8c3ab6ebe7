"""The recorder: a transparent MITM proxy and live capture, logging into Parquet.

* :class:`Proxy` (asyncio) / :class:`BackgroundProxy` (own thread, for notebooks): forward
  IEC 104 traffic between masters and an outstation unchanged and log both directions,
  decoded, in the schema of :mod:`iec104.analyzer.schema`; optional :class:`Rule` objects
  drop or rewrite chosen ASDUs (sequence numbers are kept consistent).
* :class:`LiveCapture`: sniff an interface (dumpcap) through the dissector's TCP
  reassembly into the same kind of log, optionally keeping the raw pcapng.
* :class:`LogWriter` / :class:`JournaledParquetSink` / :func:`recover`: the crash-safe,
  rotating Parquet directory both write (``pandas.read_parquet(directory)`` reads it).
"""

from .live import CaptureStartError, LiveCapture
from .logwriter import LogWriter, LogWriterError
from .rules import Rule, RuleError, parse_rule
from .server import BackgroundProxy, Proxy, parse_address
from .sink import JournaledParquetSink, read_journal, recover

__all__ = ["BackgroundProxy", "CaptureStartError", "JournaledParquetSink", "LiveCapture",
           "LogWriter", "LogWriterError", "Proxy", "Rule", "RuleError", "parse_address",
           "parse_rule", "read_journal", "recover"]
