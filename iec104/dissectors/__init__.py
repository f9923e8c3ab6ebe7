"""Passive IEC 60870-5-104 dissector: capture files -> TCP streams -> records.

Layers (each usable on its own; only :mod:`.records`/:mod:`.stream` need pyarrow):

* :mod:`.capture` -- pcap/pcapng records (:class:`~.capture.CaptureReader`,
  :class:`~.capture.Packet`); :mod:`.errors` -- ``CaptureError``, ``CaptureWarning``
* :mod:`.packet` -- link/IP/TCP header decoding (:func:`~.packet.decode_tcp`)
* :mod:`.reassembly` -- per-connection TCP reassembly into StreamStart/Data/Gap/Fallback/
  StreamEnd events (:class:`~.reassembly.Reassembler`, :func:`~.reassembly.stream_events`)
* :mod:`.heuristic` -- "do these bytes look like IEC 104 APDUs?"
* :mod:`.decoder` / :mod:`.records` -- one direction's bytes -> codec Framer -> rows
* :mod:`.stream` -- reassembly events -> rows; :func:`~.stream.dissect` runs the whole chain
* :mod:`.objects` -- packets held in memory (scapy lists, (time, frame) pairs) as records
"""
