"""Capture formats -> TCP segments -> reassembled streams (standard library and the codec only).

* :mod:`.reader` -- pcap/pcapng records (:class:`~.reader.CaptureReader`, :class:`~.reader.Packet`);
  :mod:`.errors` -- ``CaptureError``, ``CaptureWarning``
* :mod:`.packet` -- link/IP/TCP header decoding (:func:`~.packet.decode_tcp`) and THE
  packets -> segments loop (:func:`~.packet.tcp_segments`)
* :mod:`.ipfrag` -- IPv4/IPv6 fragment reassembly (:class:`~.ipfrag.Defragmenter`)
* :mod:`.reassembly` -- per-connection TCP reassembly into StreamStart/StreamData/Gap/Fallback/
  StreamEnd events (:class:`~.reassembly.Reassembler`, :func:`~.reassembly.stream_events`)
* :mod:`.heuristic` -- "do these bytes look like IEC 104 APDUs?" (the codec's APCI rules)

Nothing here knows about rows or Parquet: :mod:`iec104.dissector` turns the streams into
records (:mod:`iec104.records`).
"""
