"""Records: the one home of the rows every stage produces or consumes.

* :mod:`.schema` -- the Parquet schema (versioned; columns addressed by name) and the row kinds
* :mod:`.builder` -- :class:`~.builder.RecordBuilder`: decoded frames -> rows (where a row is
  built); :mod:`.decoder` -- :class:`~.decoder.DirectionDecoder`: one direction's octets ->
  codec ``Framer`` -> builder
* :mod:`.filter` -- the ``--filter`` language over rows
* :mod:`.parquet` -- where rows are written and read: :class:`~.parquet.ParquetSink` (a file
  appears only when complete; full-disk salvage), :func:`~.parquet.load`,
  :func:`~.parquet.parquet_batches`; :mod:`.journal` -- the crash-safe rotating directory of
  the recorder (:class:`~.journal.JournaledParquetSink`, :func:`~.journal.recover`)

Depends on the codec only (and pyarrow).
"""
