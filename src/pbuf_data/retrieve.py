"""Retrieval of raw files from their upstream URL, guarded by the registry's sha256 pin.

A file is streamed to a temporary name beside its destination while being
hashed (:mod:`pbuf_data.atomic`); only a file whose sha256 equals the pin is renamed into place. A
mismatch, an HTTP error or an unreachable host leaves nothing behind and
names the file, the URL and where to put the file by hand instead.
"""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from pathlib import Path

from .atomic import atomic_file
from .errors import PbufDataError

TIMEOUT = 30


def download(url: str, destination: str | Path, sha256: str, *, dataset: str, name: str, mirror_hint: str) -> str:
    """Fetch ``url`` to ``destination`` if and only if its content has the pinned ``sha256``."""
    digest = hashlib.sha256()
    with atomic_file(destination) as out:
        try:
            with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
                while block := response.read(1 << 20):
                    digest.update(block)
                    out.write(block)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = f"HTTP {exc.code} {exc.reason}" if isinstance(exc, urllib.error.HTTPError) else getattr(exc, "reason", exc)
            raise PbufDataError(
                f"download from {url} failed ({reason}); put the file at {mirror_hint} instead",
                dataset=dataset,
                file=name,
                check="retrieve",
            ) from None
        actual = digest.hexdigest()
        if actual != sha256:
            raise PbufDataError(
                f"downloaded file from {url} has sha256 {actual}, the registry pins {sha256}: not kept",
                dataset=dataset,
                file=name,
                check="sha256 pin",
            )
    return actual
