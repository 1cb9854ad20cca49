"""A list of names read from a file a person names (``pbuf-data reprocess --from-file``).

The file must be a small regular UTF-8 text file: a missing file, a folder, a FIFO (opened
non-blocking, so it does not hang), a device or a binary file is one message naming it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ..core.errors import PbufDataError

MAX_LIST_BYTES = 1 << 20


def read_names(path: str | Path) -> list[str]:
    """The names of ``path``, one a line; blank lines and lines starting with ``#`` are left out."""
    from .rawio import file_kind

    def refuse(message):
        return PbufDataError(message, file=str(path), check="list file")

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise refuse("no such file") from None
    except OSError as exc:
        raise refuse(f"cannot open: {exc.strerror or exc}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise refuse(f"is {file_kind(mode)}, not a text file of names")
    with os.fdopen(fd, "rb") as fh:
        try:
            data = fh.read(MAX_LIST_BYTES + 1)
        except OSError as exc:
            raise refuse(f"cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_LIST_BYTES:
        raise refuse(f"larger than {MAX_LIST_BYTES} bytes: not a list of dataset names")
    try:
        if b"\0" in data:
            raise UnicodeDecodeError("utf-8", data, data.index(b"\0"), data.index(b"\0") + 1, "NUL byte")
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise refuse(f"not UTF-8 text (a binary file?): byte {exc.start + 1} ({exc.reason})") from None
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
