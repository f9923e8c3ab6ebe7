"""Passive IEC 60870-5-104 dissector: capture files -> TCP streams -> records.

Layers (each usable on its own):

* :mod:`.capture` -- pcap/pcapng records (:class:`~.capture.CaptureReader`, :class:`~.capture.Packet`)
* :mod:`.packet` -- link/IP/TCP header decoding (:func:`~.packet.decode_tcp`)
* :mod:`.reassembly` -- per-connection TCP reassembly into Data/Gap events
* :mod:`.heuristic` -- "do these bytes look like IEC 104 APDUs?"
"""
