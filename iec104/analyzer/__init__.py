"""Analysis of decoded IEC 104 traffic: Parquet storage, loaders and investigations.

Every investigation takes a DataFrame of the Parquet schema (:mod:`.schema`), a Parquet
file or directory, or a capture file, and returns a DataFrame (see each module):

* :func:`sessions`, :func:`link_findings`, :func:`sequence_analysis`, :func:`timeouts`,
  :func:`message_rate` (:mod:`.link`)
* :func:`point_timeline`, :func:`latest_values`, :func:`value_changes`,
  :func:`quality_transitions` (:mod:`.points`)
* :func:`commands`, :func:`interrogations` (:mod:`.command_audit`)
* :func:`type_counts`, :func:`cause_counts`, :func:`type_cause_matrix`, :func:`apci_counts`
  (:mod:`.stats`)
* :func:`anomalies`, :func:`time_drift` (:mod:`.anomaly`)
* :func:`profiles` (:mod:`.profiles`: field sizes per connection direction)
* :func:`authentication` (:mod:`.security`: IEC 62351-5 challenges, replies, failures)
* :func:`plot_value_timeline`, :func:`plot_message_rate` (:mod:`.plots`, needs matplotlib)
* :func:`summary`, :func:`summary_text`, :func:`report_html`, :func:`write_report`
  (:mod:`.report`)
"""

import importlib
from typing import Any

# The investigations need pandas (and plots matplotlib): they are imported on first use, so
# that the dissector, which only needs the schema, starts fast and light (also in workers).
_LAZY = {
    # (no module is named like a function: importing a submodule binds its name here)
    "anomalies": "anomaly", "time_drift": "anomaly",
    "commands": "command_audit", "interrogations": "command_audit",
    "apdus": "frames", "as_frame": "frames",
    "link_findings": "link", "message_rate": "link", "sequence_analysis": "link",
    "sessions": "link", "timeouts": "link",
    "plot_message_rate": "plots", "plot_value_timeline": "plots",
    "latest_values": "points", "point_timeline": "points", "quality_transitions": "points",
    "value_changes": "points",
    "overview": "report", "report_html": "report", "summary": "report",
    "summary_text": "report", "write_report": "report",
    "COLUMN_NAMES": "schema", "COLUMNS": "schema", "SCHEMA": "schema",
    "SCHEMA_VERSION": "schema",
    "authentication": "security",
    "profiles": "profiles",
    "apci_counts": "stats", "cause_counts": "stats", "type_cause_matrix": "stats",
    "type_counts": "stats",
    "ParquetSink": "storage", "load": "storage", "schema_version": "storage",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


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
