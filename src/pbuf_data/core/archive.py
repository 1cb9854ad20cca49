"""Reading a dataset's ``.npz`` archive with every size checked before anything is allocated.

An ``.npy`` member's header declares its array's shape and type; a hostile or damaged archive can
declare far more than it holds (2^20 x 2^20 values in a few bytes), and a deflated member can
inflate a thousand-fold (3 GiB from 3 MiB). :func:`read_npz` checks each header against the bytes
the member holds, and the sizes the zip directory declares against :data:`MAX_INFLATED_BYTES`,
before any array is built.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

MAX_INFLATED_BYTES = 1 << 30  # a compressed archive (written elsewhere: ours are stored) is inflated up to this

_LOCAL_HEADER = 30  # bytes of a zip member's local header before its name and extra field


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` archive, as ``np.load`` gives them, with every size checked before allocation.

    The archives written here store their members uncompressed (:func:`write_npz`), so each array is
    read straight from the file into its buffer (``np.lib.format.read_array`` on the open file: one
    read, no copy through zipfile and no CRC-32, which ``np.load`` spends most of its time on). Each
    member's ``.npy`` header must declare exactly the bytes the member holds (so an array is never larger
    than its file) and each member must end exactly where the zip directory says. A compressed member
    (an archive written elsewhere) is inflated through zipfile, up to ``MAX_INFLATED_BYTES`` in all, as
    its zip directory declares them (zipfile reads no more than that). Bit flips are caught by the sha256
    (``verify=True``), not here.
    """
    arrays = {}
    with open(path, "rb") as fh, zipfile.ZipFile(fh) as archive:
        members = archive.infolist()
        inflated = sum(m.file_size for m in members if m.compress_type != zipfile.ZIP_STORED)
        if inflated > MAX_INFLATED_BYTES:
            raise ValueError(f"its compressed members would inflate to {inflated} bytes, more than the "
                             f"{MAX_INFLATED_BYTES} read from a compressed archive")
        for member in members:
            if member.flag_bits & 0x1:
                raise ValueError(f"member {member.filename!r} is encrypted")
            key = member.filename[:-4] if member.filename.endswith(".npy") else member.filename
            if member.compress_type != zipfile.ZIP_STORED:
                with archive.open(member) as stream:
                    _check_header(stream, member)
                with archive.open(member) as stream:
                    arrays[key] = np.lib.format.read_array(stream, allow_pickle=False)
                continue
            fh.seek(member.header_offset)
            header = fh.read(_LOCAL_HEADER)
            if len(header) != _LOCAL_HEADER or header[:4] != b"PK\x03\x04":
                raise zipfile.BadZipFile(f"bad local header of member {member.filename!r}")
            start = member.header_offset + _LOCAL_HEADER + int.from_bytes(header[26:28], "little") + int.from_bytes(header[28:30], "little")
            fh.seek(start)
            _check_header(fh, member)
            fh.seek(start)
            array = np.lib.format.read_array(fh, allow_pickle=False)
            if fh.tell() != start + member.file_size:
                raise ValueError(f"member {member.filename!r} holds {fh.tell() - start} bytes, not {member.file_size}")
            arrays[key] = array
    return arrays


def _check_header(stream, member: zipfile.ZipInfo) -> None:
    """The ``.npy`` header of ``member`` must declare an array of exactly the bytes that follow it."""
    start = stream.tell()
    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(stream)
    elif version == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(stream)
    else:
        raise ValueError(f"member {member.filename!r}: .npy format version {version} is not read")
    if dtype.hasobject:
        raise ValueError(f"member {member.filename!r} holds Python objects (pickles are not read)")
    count = 1
    for extent in shape:
        count *= extent
    declared, held = count * dtype.itemsize, member.file_size - (stream.tell() - start)
    if declared != held:
        raise ValueError(f"member {member.filename!r} declares a {'x'.join(map(str, shape))} {dtype} array "
                         f"({declared} bytes) but holds {held} bytes")


_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


WRITE_BYTES = 16 << 20  # an array's data is written in slices of this many bytes (views of it: no copies)


def write_npz(fh, arrays: dict[str, np.ndarray]) -> None:
    """An ``np.savez``-compatible archive whose bytes depend only on the arrays. Each member is what
    ``np.lib.format.write_array`` writes (the version 1.0 header, then the C-ordered data), the data written
    as slices of the array's own buffer rather than the copies ``write_array`` makes for a stream."""
    with zipfile.ZipFile(_Unseekable(fh), "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for key, value in arrays.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_ZIP_EPOCH)
            info.external_attr = 0o644 << 16
            array = np.ascontiguousarray(value)
            if array.dtype.hasobject:
                raise ValueError(f"array {key!r} holds Python objects: not written (pickles are not read)")
            with zf.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array_header_1_0(member, np.lib.format.header_data_from_array_1_0(array))
                data = array.reshape(-1).view(np.uint8)
                for start in range(0, data.size, WRITE_BYTES):
                    member.write(data[start : start + WRITE_BYTES].data)


class _Unseekable:
    """Present a write-only stream to zipfile (it then writes data descriptors, no seeks)."""

    def __init__(self, fh):
        self.fh, self.pos = fh, 0

    def write(self, data):
        self.fh.write(data)
        self.pos += len(data)
        return len(data)

    def tell(self):
        return self.pos

    def flush(self):
        pass
