"""Live capture: an interface -> dumpcap -> TCP reassembly -> Parquet (and raw pcapng).

Theory of operation
-------------------
``dumpcap`` (Wireshark's capture engine: kernel BPF filter, ring buffer, no dissection)
captures the interface and writes pcapng to a pipe. A thread reads the pipe and feeds it to
:class:`~iec104.capture.reader.CaptureParser`, the same sans-IO parser that reads capture
files (a block is handled as soon as its last byte arrives; frames are numbered, snapshot
lengths honoured and damage reported as for a file). Each packet goes through the
dissector's path, exactly as a capture file would:
:func:`~iec104.capture.packet.tcp_segments` (with one
:class:`~iec104.capture.ipfrag.Defragmenter` for the whole capture), the
:class:`~iec104.capture.reassembly.Reassembler` and the
:class:`~iec104.dissector.StreamDecoder` (so rows, gaps, fallbacks and the field sizes
detected per direction are exactly those of ``iec104 convert``), into the same
:class:`~iec104.recorder.logwriter.LogWriter` as the proxy (rotation, crash safety). With
``pcapng_dir``, every block is also copied into rotating pcapng files there (each file
starts with the section header and interface descriptions, so each is a valid capture).

Rows: ``frame`` counts packets from 1 in the order dumpcap delivered them (also their
order in the pcapng files of the run), ``time`` is the capture time stamp, ``stream`` is
the reassembler's TCP stream number (0-based, per run).

Latency: dumpcap hands packets over in bursts (about every 0.1-0.2 s), so rows reach the
log that much later than the packets reached the wire. :meth:`LiveCapture.stop` waits
``linger`` seconds before stopping dumpcap so that the last packets are not cut off, and
reports dumpcap's own drop counters.

scapy is not needed; ``dumpcap`` (Debian package ``tshark``/``wireshark-common``) must be
installed, and capturing needs root or the ``CAP_NET_RAW`` capability.
"""

from __future__ import annotations

import logging
import os
import selectors
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Self

from ..capture.ipfrag import Defragmenter
from ..capture.packet import tcp_segments
from ..capture.reader import NEED_DATA, CaptureParser, Packet
from ..capture.reassembly import IEC104_PORT, Reassembler
from ..codec import Iec104Error, Profile
from ..dissector import StreamDecoder
from ..records.journal import new_session
from ..records.profiles import ProfileOverrides
from .logwriter import LogWriter

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["LiveCapture", "LiveCaptureError", "find_dumpcap"]

log = logging.getLogger(__name__)

# pcapng Section Header and Interface Description Blocks, either byte order
_HEADER_BLOCK_TYPES = frozenset((b"\x0a\x0d\x0d\x0a", b"\x01\x00\x00\x00", b"\x00\x00\x00\x01"))

_FRAGMENTS = " or (ip[6:2] & 0x1fff != 0) or (ip6 proto 44)"
"""BPF: IPv4 fragments after the first, IPv6 packets with a fragment header."""


class LiveCaptureError(Iec104Error, RuntimeError):
    """dumpcap could not start, or the capture failed (the message says why)."""


def _load_prctl() -> Any:
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux
        return None


_PRCTL = _load_prctl()  # resolved here so that the forked child only calls into libc


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: SIGTERM dumpcap if we die (even by SIGKILL) instead of leaving it running."""
    if _PRCTL is not None:
        _PRCTL(1, 15)  # PR_SET_PDEATHSIG, SIGTERM


def find_dumpcap(path: str | None = None) -> str:
    """Path of the dumpcap program (``path``, ``$IEC104_DUMPCAP`` or on ``PATH``).

    Raises:
        LiveCaptureError: not found.
    """
    candidate = path or os.environ.get("IEC104_DUMPCAP") or shutil.which("dumpcap")
    if not candidate or not (os.path.isfile(candidate) and os.access(candidate, os.X_OK)):
        raise LiveCaptureError("dumpcap not found: install Wireshark's capture tool "
                                "(Debian: apt-get install tshark) or pass its path")
    return candidate


class _PcapngFiles:
    """Rotating raw pcapng copies; every file starts with the current section header."""

    def __init__(self, directory: Path, prefix: str, max_bytes: int, max_seconds: float) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.prefix = prefix
        self.max_bytes = max_bytes
        self.max_seconds = max_seconds
        self.files: list[Path] = []
        self._f: IO[bytes] | None = None
        self._opened = 0.0
        self._count = 0
        self._run = os.urandom(3).hex()

    def write(self, stream: CaptureParser, blocks: list[bytes]) -> None:
        for block in blocks:
            if block[:4] in _HEADER_BLOCK_TYPES:  # replayed from stream.header on open
                if self._f is not None:
                    self._f.write(block)
                continue
            if self._f is None:
                self._open(stream)
            assert self._f is not None
            self._f.write(block)
        if self._f is not None:
            self._f.flush()
            if (self._f.tell() >= self.max_bytes
                    or time.monotonic() - self._opened >= self.max_seconds):
                self.close()

    def _open(self, stream: CaptureParser) -> None:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        path = self.directory / f"{self.prefix}-{stamp}-{self._run}-{self._count:05d}.pcapng"
        self._count += 1
        self._f = open(path, "xb")  # noqa: SIM115 -- closed in close()
        self._f.write(stream.header)
        self._opened = time.monotonic()
        self.files.append(path)

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None


class LiveCapture:
    """Capture IEC 104 traffic from a network interface into a Parquet directory.

    Args:
        interface: interface name for dumpcap (``lo``, ``eth0``, ``any``).
        output: Parquet directory (see :class:`~iec104.recorder.logwriter.LogWriter`).
        ports: TCP ports of IEC 104 streams (default 2404); the capture filter is
            ``tcp port P or ...`` (plus every non-first IP fragment) unless
            ``capture_filter`` or ``heuristic`` says otherwise.
        heuristic: also decode TCP streams on other ports that look like IEC 104
            (captures all TCP unless ``capture_filter`` is given).
        capture_filter: a BPF filter replacing the default.
        pcapng_dir: also keep the raw packets as rotating pcapng files in this directory
            (must not be ``output`` itself: ``pandas.read_parquet`` reads every file in
            it; a subdirectory named ``_pcapng`` is ignored by it).
        profile, flush_rows, flush_seconds, max_bytes, max_seconds, prefix, fsync, dataset: see
            :class:`~iec104.recorder.logwriter.LogWriter` (rotation applies to pcapng too).
        dumpcap: path of dumpcap (default: found on ``PATH``).
        buffer_mb: kernel capture buffer size (dumpcap ``-B``).

    Use ``start()`` / ``stop()`` or ``with``; :meth:`dataframe` returns what was logged.
    """

    def __init__(self, interface: str, output: str | os.PathLike[str], *,
                 ports: Iterable[int] = (IEC104_PORT,), heuristic: bool = False,
                 capture_filter: str | None = None,
                 pcapng_dir: str | os.PathLike[str] | None = None,
                 profile: Profile | ProfileOverrides | None = None,
                 flush_rows: int = 10_000,
                 flush_seconds: float = 1.0, max_bytes: int = 64 << 20,
                 max_seconds: float = 3600.0, prefix: str = "iec104-capture",
                 fsync: bool = False, dumpcap: str | None = None, buffer_mb: int = 16,
                 dataset: bool = False) -> None:
        self.interface = interface
        self.output = Path(output)
        self.ports = tuple(int(p) for p in ports)
        self.heuristic = heuristic
        if capture_filter is None:
            capture_filter = ("tcp" if heuristic or not self.ports else
                              " or ".join(f"tcp port {p}" for p in self.ports))
            # non-first IP fragments carry no TCP header: keep them all for the Defragmenter
            capture_filter += _FRAGMENTS
        self.capture_filter = capture_filter
        self.pcapng_dir = Path(pcapng_dir) if pcapng_dir is not None else None
        if self.pcapng_dir is not None and self.pcapng_dir.resolve() == self.output.resolve():
            raise ValueError("pcapng_dir must not be the Parquet directory itself")
        self.dumpcap = dumpcap
        self.buffer_mb = buffer_mb
        self.session = new_session(prefix) if dataset else None
        """The log session (the ``capture`` value of its rows) when writing a dataset."""
        self._writer_args: dict[str, Any] = {
            "profile": profile, "flush_rows": flush_rows, "flush_seconds": flush_seconds,
            "max_bytes": max_bytes, "max_seconds": max_seconds, "prefix": prefix,
            "fsync": fsync, "session": self.session}
        self.writer: LogWriter | None = None
        self.reassembler = Reassembler(self.ports, heuristic=heuristic)
        self._defrag = Defragmenter()  # IP fragments, held across the pipe's reads
        self._decoder: StreamDecoder | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None
        self._stream = CaptureParser("dumpcap", keep_blocks=pcapng_dir is not None)
        self._pcapng: _PcapngFiles | None = None
        self._stderr: list[str] = []
        self._error: BaseException | None = None
        self._ready = threading.Event()
        self._flush_request = threading.Event()
        self.files: list[Path] = []
        self.packets = 0
        self.segments = 0
        self.dumpcap_stats: str | None = None

    # -- control -------------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> Self:
        """Start dumpcap and the reading thread; returns once the capture is running."""
        if self._proc is not None:
            raise RuntimeError("the capture is already running")
        dumpcap = find_dumpcap(self.dumpcap)
        self._open_writer()
        cmd = [dumpcap, "-i", self.interface, "-f", self.capture_filter, "-w", "-",
               "-B", str(self.buffer_mb), "-q"]
        log.info("starting %s", " ".join(cmd))
        self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      stdin=subprocess.DEVNULL,
                                      preexec_fn=_die_with_parent)  # noqa: PLW1509 -- libc call only
        threading.Thread(target=self._read_stderr, name="iec104-dumpcap-stderr",
                         daemon=True).start()
        self._thread = threading.Thread(target=self._run, name="iec104-capture", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.05):
            if self._proc.poll() is not None or not self._thread.is_alive():
                self._thread.join(5)
                self._cleanup()
                raise LiveCaptureError(f"dumpcap failed: {self._dumpcap_message()}")
            if time.monotonic() > deadline:
                self.stop()
                raise LiveCaptureError(f"dumpcap did not start within {timeout} s: "
                                        f"{self._dumpcap_message()}")
        return self

    def _open_writer(self) -> None:
        # the StreamDecoder keeps its builder: flushes convert rows in the capture thread
        self.writer = LogWriter(self.output, swap_builders=False, origin="capture",
                                **self._writer_args)
        self._decoder = StreamDecoder(self.writer.front)
        if self.pcapng_dir is not None:
            self._pcapng = _PcapngFiles(self.pcapng_dir, self._writer_args["prefix"],
                                        self._writer_args["max_bytes"],
                                        self._writer_args["max_seconds"])

    def stop(self, linger: float = 0.5) -> list[Path]:
        """Stop capturing (after ``linger`` seconds for packets still in flight), decode
        what was captured and close the files; returns the Parquet files written."""
        proc = self._proc
        if proc is None:
            return self.files
        if linger > 0 and proc.poll() is None:
            time.sleep(linger)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # dumpcap writes what it has, then exits
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if self._thread is not None:
            self._thread.join()
        self._cleanup()
        if self._error is not None:
            raise LiveCaptureError(f"capture failed: {self._error}") from self._error
        return self.files

    def _cleanup(self) -> None:
        if self._pcapng is not None:
            self._pcapng.close()
        if self.writer is not None:
            self.files = self.writer.close()
        if self._proc is not None and self._proc.stdout is not None:
            self._proc.stdout.close()
        self._proc = None

    def run(self, duration: float | None = None) -> list[Path]:
        """Capture until ``duration`` seconds pass, dumpcap exits, or KeyboardInterrupt."""
        self.start()
        try:
            deadline = None if duration is None else time.monotonic() + duration
            while self._thread is not None and self._thread.is_alive():
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                self._thread.join(0.5 if left is None else min(0.5, left))
        finally:
            files = self.stop(linger=0)
        return files

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- inspection ----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether packets are being captured (False after stop or if dumpcap died)."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def pcapng_files(self) -> list[Path]:
        return list(self._pcapng.files) if self._pcapng is not None else []

    def flush(self, timeout: float = 10.0) -> None:
        """Hand every row decoded so far to the log writer (waits for the capture thread;
        directions whose field sizes are still being detected are decided now)."""
        if self._thread is None or not self._thread.is_alive():
            return
        done = self._flush_request
        done.clear()
        self._flush_wanted = True
        if not done.wait(timeout):
            raise TimeoutError("the capture thread did not flush in time")

    def dataframe(self) -> pd.DataFrame:
        """Everything logged so far (rows of packets dumpcap has not yet delivered are
        not included)."""
        if self.writer is None:
            raise RuntimeError("the capture was never started")
        if self._thread is not None and self._thread.is_alive():
            self.flush()
            self.writer.sync()
        return self.writer.dataframe()

    @property
    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {"packets": self.packets, "tcp_segments": self.segments,
                               "streams": len(self.reassembler.connections),
                               "kernel_drops": sum(self._stream.if_drops.values())}
        if self.writer is not None:
            out.update(self.writer.stats)
        return out

    # -- capture thread ------------------------------------------------------------------------

    _flush_wanted = False

    def _read_stderr(self) -> None:
        proc = self._proc
        assert proc is not None and proc.stderr is not None
        for line in proc.stderr:
            text = line.decode(errors="replace").rstrip()
            if text:
                self._stderr.append(text)
                if "dropped" in text or "Packets" in text:
                    self.dumpcap_stats = text
                log.debug("dumpcap: %s", text)

    def _dumpcap_message(self) -> str:
        time.sleep(0.1)
        return "; ".join(self._stderr[-5:]) or "no message"

    def _run(self) -> None:
        proc = self._proc
        writer = self.writer
        assert proc is not None and proc.stdout is not None and writer is not None
        fd = proc.stdout.fileno()
        sel = selectors.DefaultSelector()
        sel.register(fd, selectors.EVENT_READ)
        stream = self._stream
        tick = min(0.25, writer.flush_seconds / 2)
        try:
            while True:
                if sel.select(tick):
                    data = os.read(fd, 1 << 20)
                    if not data:
                        break
                    stream.feed(data)
                    self._parse(stream)
                self._tick()
            stream.end()
            if stream.started:  # (a dumpcap that wrote nothing failed: start() says why)
                self._parse(stream)
            self._finish()
        except Exception as exc:  # noqa: BLE001 -- reported by stop()
            log.error("live capture failed: %s", exc)
            self._error = exc
            if proc.poll() is None:
                proc.terminate()
        finally:
            sel.close()
            if stream.frames or stream.header:
                self._ready.set()
            self._flush_request.set()

    def _parse(self, stream: CaptureParser) -> None:
        """Decode what the bytes fed so far complete (and copy their blocks)."""
        if not stream.parse_header():  # CaptureError: dumpcap wrote no capture
            return
        self._ready.set()
        packets: list[Packet] = []
        for item in stream.packets():
            if item is NEED_DATA:
                break
            packets.append(item)  # type: ignore[arg-type]
        if self._pcapng is not None and stream.blocks:
            self._pcapng.write(stream, stream.take_blocks())
        self._decode(packets)
        if stream.problem is not None:
            raise LiveCaptureError(f"dumpcap's output: {stream.problem}")

    def _decode(self, packets: list[Packet]) -> None:
        """Capture thread: packets -> TCP segments -> reassembly -> rows."""
        self.packets += len(packets)
        handle = self._decoder.handle  # type: ignore[union-attr]
        feed = self.reassembler.feed
        for seg in tcp_segments(packets, defragmenter=self._defrag):
            self.segments += 1
            for event in feed(seg):
                handle(event)

    def _tick(self) -> None:
        """Capture thread, at least every ``flush_seconds / 2``: flush when due or asked."""
        writer = self.writer
        assert writer is not None
        writer.maybe_flush()
        if self._flush_wanted:
            self._flush_wanted = False
            writer.decide()  # asked for every row: detection holds none back
            writer.flush()
            self._flush_request.set()

    def _finish(self) -> None:
        """Capture thread, at the end of the packets: close the streams, flush."""
        assert self._decoder is not None and self.writer is not None
        self._defrag.close()
        for event in self.reassembler.close():
            self._decoder.handle(event)
        self._decoder.close()
        self.writer.flush()
