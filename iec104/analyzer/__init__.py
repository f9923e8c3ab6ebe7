"""Investigations of decoded IEC 104 traffic (pandas).

Every investigation takes a DataFrame of the Parquet schema (:mod:`iec104.records.schema`),
a Parquet file or directory, or a capture file, and returns a DataFrame (see each module):

* :func:`sessions`, :func:`link_findings`, :func:`sequence_analysis`, :func:`timeouts`,
  :func:`message_rate` (:mod:`.link`)
* :func:`point_timeline`, :func:`latest_values`, :func:`value_changes`,
  :func:`quality_transitions` (:mod:`.points`)
* :func:`commands`, :func:`interrogations` (:mod:`.command_audit`)
* :func:`type_counts`, :func:`cause_counts`, :func:`type_cause_matrix`, :func:`apci_counts`
  (:mod:`.stats`)
* :func:`anomalies`, :func:`time_drift` (:mod:`.anomaly`)
* :func:`profiles` (:mod:`.field_sizes`: COT/CA/IOA sizes per connection direction)
* :func:`authentication` (:mod:`.security`: IEC 62351-5 challenges, replies, failures)
* :func:`files`: the files transferred, rebuilt (:mod:`.file_transfer`)
* :func:`plot_value_timeline`, :func:`plot_message_rate` (:mod:`.plots`, needs matplotlib)
* :func:`summary`, :func:`summary_text`, :func:`report_html`, :func:`write_report`
  (:mod:`.report`)

For notebooks, the records' own faces are re-exported here too: :data:`SCHEMA`,
:class:`ParquetSink`, :func:`load`, :func:`schema_version` (their home is :mod:`iec104.records`).
"""

from ..records.reader import load, schema_version
from ..records.schema import COLUMN_NAMES, COLUMNS, SCHEMA, SCHEMA_VERSION
from ..records.sink import ParquetSink
from .anomaly import anomalies, time_drift
from .command_audit import commands, interrogations
from .field_sizes import profiles
from .file_transfer import files
from .frames import apdus, as_frame
from .link import link_findings, message_rate, sequence_analysis, sessions, timeouts
from .plots import plot_message_rate, plot_value_timeline
from .points import latest_values, point_timeline, quality_transitions, value_changes
from .report import overview, report_html, summary, summary_text, write_report
from .security import authentication
from .stats import apci_counts, cause_counts, type_cause_matrix, type_counts

__all__ = [
           "COLUMNS",
           "COLUMN_NAMES",
           "SCHEMA",
           "SCHEMA_VERSION",
           "ParquetSink",
           "anomalies",
           "apci_counts",
           "apdus",
           "as_frame",
           "authentication",
           "cause_counts",
           "commands",
           "files",
           "interrogations",
           "latest_values",
           "link_findings",
           "load",
           "message_rate",
           "overview",
           "plot_message_rate",
           "plot_value_timeline",
           "point_timeline",
           "profiles",
           "quality_transitions",
           "report_html",
           "schema_version",
           "sequence_analysis",
           "sessions",
           "summary",
           "summary_text",
           "time_drift",
           "timeouts",
           "type_cause_matrix",
           "type_counts",
           "value_changes",
           "write_report",
]
