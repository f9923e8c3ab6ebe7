"""iec104: IEC 60870-5-104 toolkit (codec, driver, dissector, proxy, analyzer)."""

from .codec import DecodeError, EncodeError, Iec104Error

__all__ = ["DecodeError", "EncodeError", "Iec104Error"]
__version__ = "0.1.0"
