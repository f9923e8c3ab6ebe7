"""Test support: independent oracles (tshark) and peers (hat-drivers, c104), pcap building.

Nothing in here is imported by the ``iec104`` package itself; these modules exist so that tests
can check our codec, driver and dissector against implementations we did not write.
"""

HOST = "127.0.0.1"
"""Every test server and peer listens on the loopback address only."""
