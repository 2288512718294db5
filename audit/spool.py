"""The audit spool: a local, fsync'd journal of unsigned decision statements, in segment files.

`charter serve` makes each decision durable here before answering (one small append and one
`fdatasync` per turn of the event loop), and a low-priority applier process turns the entries into
signed records in the store later (`spooled.py`). This is a write-ahead log: what the applier has
durably applied is recorded in the store, in the same transaction as the records, and a segment
is deleted only once everything in it is durably in the store.

Layout: `DIR/spool.id` (this spool's id, which names its position in the store) and segments
`DIR/<seq>.seg`. An entry is `CSP1`, the payload's length and CRC-32 (little-endian u32 each),
then the payload. A position is `seq << 32 | offset`: one integer, ordered like the entries.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

MAGIC = b"CSP1"
_HEADER = struct.Struct("<4sII")
HEADER_SIZE = _HEADER.size
SEGMENT_BYTES = 16 << 20  # segment size (zero-filled ahead of use); a new one starts past it
MAX_ENTRY = 16 << 20  # a statement is a few KB; anything near this is a corrupt length


class SpoolError(Exception):
    """The spool cannot be written, or an entry in it is corrupt (the message names file and offset)."""


def position(seq: int, offset: int) -> int:
    return seq << 32 | offset


def split(pos: int) -> tuple[int, int]:
    return pos >> 32, pos & 0xFFFFFFFF


def distance(a: int, b: int, segment_bytes: int = SEGMENT_BYTES) -> int:
    """About how many spool bytes lie between positions a <= b (segments counted full)."""
    (sa, oa), (sb, ob) = split(a), split(b)
    return ob - oa if sb == sa else (sb - sa) * segment_bytes + ob - oa


def frame(payload: bytes) -> bytes:
    return _HEADER.pack(MAGIC, len(payload), zlib.crc32(payload)) + payload


def _segment(directory: Path, seq: int) -> Path:
    return directory / f"{seq:012d}.seg"


def segments(directory: Path) -> list[int]:
    return sorted(int(p.stem) for p in directory.glob("*.seg") if p.stem.isdigit())


def spool_id(directory: Path) -> str:
    """This spool's id, created on first use: the store keys its applied position by it."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "spool.id"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    tmp = directory / f".spool.id.{os.getpid()}"
    tmp.write_text(secrets.token_hex(16) + "\n")
    _fsync(tmp)
    try:
        os.link(tmp, path)  # first writer wins; a concurrent one reads the winner's id
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    _fsync(directory)
    return path.read_text().strip()


def _fsync(path: Path) -> None:
    """fsync a file, or a directory (so that the names in it are durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _entry_at(data: bytes, pos: int) -> bytes | None:
    """The payload of the whole, intact entry at `pos` (magic, a sane length, its CRC-32), or None."""
    if len(data) - pos < HEADER_SIZE:
        return None
    magic, n, crc = _HEADER.unpack_from(data, pos)
    body = data[pos + HEADER_SIZE : pos + HEADER_SIZE + n]
    if magic != MAGIC or n > MAX_ENTRY or len(body) != n or zlib.crc32(body) != crc:
        return None
    return body


def _valid_end(path: Path) -> int:
    """Offset just past the last whole, intact entry of a segment: a torn tail (a crash between
    write and fdatasync, so never acknowledged) ends the valid part."""
    end = 0
    with open(path, "rb") as f:
        data = f.read()
    while (body := _entry_at(data, end)) is not None:
        end += HEADER_SIZE + len(body)
    return end


def _zero_filled(path: Path, size: int) -> None:
    """Write `size` zero bytes to a new file at `path` (via a temporary name) and make it durable."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        chunk = bytes(1 << 20)
        for off in range(0, size, len(chunk)):
            os.pwrite(fd, chunk[: min(len(chunk), size - off)], off)
        os.fsync(fd)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    finally:
        os.close(fd)
    os.rename(tmp, path)


def prepare_spare(directory: str | Path, segment_bytes: int = SEGMENT_BYTES) -> bool:
    """Zero-fill the next segment ahead of need (the applier does it while idle); True if it did."""
    spare = Path(directory) / SPARE
    if spare.exists():
        return False
    _zero_filled(spare, segment_bytes)
    _fsync(Path(directory))
    return True


SPARE = "spare.seg.next"


class Spool:
    """The writing side (one process). Not thread-safe: the event loop owns it.

    Segments are zero-filled before use and written in place: an `fdatasync` then flushes this
    file's data only, with no file size or block allocation to commit to the filesystem's journal
    (on ext4 such a commit also flushes every other file's pending data, and the audit store's
    writes would then be paid for by each review's fsync)."""

    def __init__(self, directory: str | Path, segment_bytes: int = SEGMENT_BYTES) -> None:
        if not HEADER_SIZE < segment_bytes < 1 << 32:  # an offset is 32 bits of a position
            raise ValueError(f"segment_bytes must be below 4 GiB, not {segment_bytes}")
        self.dir = Path(directory)
        self.segment_bytes = segment_bytes
        self.broken: str | None = None  # set by a failed write or sync: nothing more is accepted
        self._lock = self.fd = -1
        try:
            self.id = spool_id(self.dir)
            self._lock = os.open(self.dir / "writer.lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise SpoolError(f"audit spool {self.dir} is in use by another charter process") from None
            seqs = segments(self.dir)
            self.seq = seqs[-1] if seqs else 1
            path = _segment(self.dir, self.seq)
            if not path.exists():
                self._create(self.seq)
            end = _valid_end(path)
            self.fd = os.open(path, os.O_WRONLY, 0o600)
            # Zero what follows the last intact entry (a torn tail, never acknowledged), so that
            # nothing after the end can pass for an entry after a later crash.
            size = max(os.fstat(self.fd).st_size, self.segment_bytes)
            os.pwrite(self.fd, bytes(size - end), end)
            os.fsync(self.fd)
        except BaseException as e:
            self._close_fds()
            if isinstance(e, OSError):
                raise SpoolError(f"audit spool {self.dir}: {e}") from e
            raise
        self.offset = end
        self.synced = position(self.seq, end)

    @property
    def end(self) -> int:
        return position(self.seq, self.offset)

    def write(self, payloads: list[bytes]) -> int:
        """Append entries (not yet durable: call `sync`); return the position after them."""
        if self.broken is not None:
            raise SpoolError(self.broken)
        for p in payloads:
            if len(p) > MAX_ENTRY:
                raise SpoolError(f"audit spool entry of {len(p)} bytes: the limit is {MAX_ENTRY}")
        data = b"".join(frame(p) for p in payloads)
        try:
            if self.offset and self.offset + len(data) > self.segment_bytes:
                self._next_segment()
            written = os.pwrite(self.fd, data, self.offset)
            if written != len(data):  # a full disk: the rest never lands, and the entries are torn
                raise OSError(f"short write ({written} of {len(data)} bytes)")
        except OSError as e:
            raise SpoolError(f"audit spool {_segment(self.dir, self.seq)}: {e}") from e
        self.offset += len(data)
        return self.end

    def sync(self) -> int:
        """Make everything written durable; return the durable position. A failure is final for
        this spool: after a failed fdatasync the kernel may have dropped the pages it could not
        write, so later entries would follow a hole (the next start reads up to the hole)."""
        if self.broken is not None:
            raise SpoolError(self.broken)
        end = self.end
        if end != self.synced:
            try:
                os.fdatasync(self.fd)
            except OSError as e:
                self.broken = f"audit spool {_segment(self.dir, self.seq)}: fdatasync: {e}"
                raise SpoolError(self.broken) from e
            self.synced = end
        return end

    def _create(self, seq: int) -> None:
        path = _segment(self.dir, seq)
        try:
            os.rename(self.dir / SPARE, path)  # zero-filled ahead of time by the applier
        except FileNotFoundError:
            _zero_filled(path, self.segment_bytes)
        _fsync(self.dir)  # the segment's name is durable before anything in it is acknowledged

    def _next_segment(self) -> None:
        """Move to a new segment, which exists and is open before anything switches to it (a failure
        leaves this one current); what the old one holds is made durable first."""
        os.fdatasync(self.fd)
        nxt = self.seq + 1
        self._create(nxt)
        fd = os.open(_segment(self.dir, nxt), os.O_WRONLY)
        os.close(self.fd)
        self.seq, self.fd, self.offset = nxt, fd, 0
        self.synced = self.end

    def release(self, durable: int) -> int:
        """Delete the segments wholly below `durable` (what the store holds durably); return how many."""
        seq, _ = split(durable)
        gone = 0
        for s in segments(self.dir):
            if s >= min(seq, self.seq):
                break
            try:
                _segment(self.dir, s).unlink()
                gone += 1
            except FileNotFoundError:
                pass
        return gone

    def close(self) -> None:
        try:
            self.sync()
        finally:
            self._close_fds()

    def _close_fds(self) -> None:
        for fd in (self.fd, self._lock):  # closing the lock file releases the lock
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.fd = self._lock = -1


def read(directory: str | Path, start: int, stop: int) -> Iterator[tuple[int, bytes]]:
    """(position after the entry, payload) for the entries from `start` up to `stop` (positions
    the writer has made durable). A corrupt entry below `stop` raises SpoolError naming it."""
    d = Path(directory)
    seq, offset = split(start)
    end_seq, end_off = split(stop)
    known = segments(d)
    if seq not in known and start != stop:
        # the position's segment is gone (released) or not yet started: start at the next one
        later = [s for s in known if s > seq]
        if not later:
            return
        seq, offset = later[0], 0
    while (seq, offset) < (end_seq, end_off):
        path = _segment(d, seq)
        limit = end_off if seq == end_seq else None
        try:
            with open(path, "rb") as f:
                f.seek(offset)
                data = f.read() if limit is None else f.read(max(0, limit - offset))
        except FileNotFoundError as e:
            raise SpoolError(
                f"audit spool segment {path} is missing (expected entries up to {stop:#x})"
            ) from e
        pos = 0
        while pos < len(data):
            body = _entry_at(data, pos)
            if body is None:
                if limit is None and not data[pos : pos + HEADER_SIZE].strip(b"\0"):
                    break  # the zero-filled rest of an earlier segment
                raise SpoolError(
                    f"{path}: corrupt entry at offset {offset + pos} (bad magic, length or CRC-32)"
                )
            pos += HEADER_SIZE + len(body)
            yield position(seq, offset + pos), body
        if seq == end_seq:
            return
        seq, offset = seq + 1, 0
