"""Retrieval of raw files from their upstream URL with pooch, guarded by the registry's sha256 pin.

``pooch.retrieve`` streams the file to a temporary name beside its destination,
checks it against ``known_hash`` and only then renames it into place; a
mismatch leaves nothing behind. Around it, this module bounds the download:
no more bytes than the kind's ``max_raw_bytes`` (announced length or bytes
received), no longer than an overall deadline, and no block of ``CHUNK`` bytes
waited for longer than a stall limit (a server that trickles a byte every few
seconds, never silent long enough for the read timeout, is stopped after
``STALL`` seconds, not at the deadline), and every failure — HTTP error, unreachable host, a reply
that is not HTTP, oversize, too slow, wrong content — is one clear message
naming the file, the URL and where to put the file by hand instead.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

from ..core.errors import PbufDataError

TIMEOUT = 30  # seconds the server may stay silent
DEADLINE = 900  # seconds for a whole download
STALL = 120  # seconds a block of CHUNK bytes may take (slower than CHUNK / STALL bytes a second is a stall)
CHUNK = 1 << 14


class _Refused(Exception):
    """The download was stopped by one of its bounds (size, deadline)."""


class _BoundedSink:
    """Write side of a download: hashes what it writes and refuses bytes past the cap or the deadline."""

    def __init__(self, out, max_bytes: int, deadline: float):
        self.out = out
        self.max_bytes = max_bytes
        self.deadline = deadline
        self.size = 0
        self.digest = hashlib.sha256()
        self.abandoned = False
        self.last_block = time.monotonic()

    def write(self, block: bytes) -> None:
        if self.abandoned:
            raise _Refused("abandoned")
        self.size += len(block)
        if self.size > self.max_bytes:
            raise _Refused(f"more than the limit of {self.max_bytes} bytes received")
        self.digest.update(block)
        self.out.write(block)
        self.last_block = time.monotonic()

    def flush(self) -> None:
        self.out.flush()


class _BoundedDownloader:
    """A pooch downloader: pooch's HTTPDownloader run under a size cap, an overall deadline and a stall limit."""

    def __init__(self, max_bytes: int, deadline: float, timeout: float, stall: float = STALL):
        self.max_bytes = max_bytes
        self.deadline = deadline
        self.timeout = timeout
        self.stall = stall
        self.sink: _BoundedSink | None = None

    def _check_length(self, response, *args, **kwargs):
        announced = response.headers.get("Content-Length", "")
        if announced.isdigit() and int(announced) > self.max_bytes:
            response.close()
            raise _Refused(f"the server announces {int(announced)} bytes, above the limit of {self.max_bytes}")

    def __call__(self, url, output_file, pooch_instance):
        import pooch

        http = pooch.HTTPDownloader(
            progressbar=False,
            chunk_size=CHUNK,
            timeout=min(self.timeout, self.deadline),
            hooks={"response": self._check_length},
        )
        outcome: dict = {}

        def fetch():
            try:
                http(url, self.sink, pooch_instance)
            except BaseException as exc:  # handed to the waiting thread below
                outcome["error"] = exc

        with open(output_file, "wb") as out:
            self.sink = _BoundedSink(out, self.max_bytes, time.monotonic() + self.deadline)
            # A blocking read cannot be interrupted from inside: the transfer runs in a daemon
            # thread and is abandoned at the deadline (its next write fails, its file is removed).
            worker = threading.Thread(target=fetch, daemon=True)
            worker.start()
            end = time.monotonic() + self.deadline
            while worker.is_alive() and time.monotonic() < end:
                worker.join(min(0.5, max(0.0, end - time.monotonic())))
                if worker.is_alive() and time.monotonic() - self.sink.last_block > self.stall:
                    self.sink.abandoned = True
                    raise _Refused(f"stalled: no block of {CHUNK} bytes within {self.stall:g} s ({self.sink.size} "
                                   "bytes received in all)")
            if worker.is_alive():
                self.sink.abandoned = True
                raise _Refused(f"not complete within the deadline of {self.deadline:g} s ({self.sink.size} bytes received)")
            if "error" in outcome:
                raise outcome["error"]
            out.flush()
            os.fsync(out.fileno())


def _causes(exc: BaseException):
    """The exception and those it wraps (requests wraps urllib3's, which wraps http.client's)."""
    stack, seen = [exc], set()
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        stack += [a for a in current.args if isinstance(a, BaseException)]
        stack += [c for c in (current.__cause__, current.__context__) if c is not None]


def _reason(exc: BaseException, url: str) -> str:
    import http.client

    import requests
    import urllib3

    if isinstance(exc, _Refused):
        return str(exc)
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return f"HTTP {exc.response.status_code} {exc.response.reason}"
    if isinstance(exc, requests.ConnectionError):
        if any(isinstance(c, (http.client.HTTPException, urllib3.exceptions.ProtocolError)) for c in _causes(exc)):
            return "the server's reply is not a valid HTTP response"
        return f"cannot connect to {urlparse(url).netloc}"
    if isinstance(exc, requests.Timeout):
        return "the server stopped answering"
    if isinstance(exc, requests.exceptions.InvalidSchema):  # e.g. a redirect to file://: never followed
        return "the server redirected to an address that is not HTTP or HTTPS (not followed)"
    if isinstance(exc, requests.RequestException):
        return f"{exc.__class__.__name__}: the reply could not be read"
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)


def download(
    url: str,
    destination: str | Path,
    sha256: str,
    *,
    dataset: str,
    name: str,
    mirror_hint: str,
    max_bytes: int,
    deadline: float = DEADLINE,
    timeout: float = TIMEOUT,
    stall: float = STALL,
) -> str:
    """Fetch ``url`` to ``destination`` if and only if its content has the pinned ``sha256``."""
    import pooch
    import requests

    destination = Path(destination)
    downloader = _BoundedDownloader(max_bytes, deadline, timeout, stall)
    try:
        pooch.retrieve(
            url,
            known_hash=f"sha256:{sha256}",
            fname=destination.name,
            path=destination.parent,
            downloader=downloader,
            progressbar=False,
        )
    except (_Refused, requests.RequestException, OSError) as exc:  # (before ValueError: InvalidSchema is both)
        raise PbufDataError(
            f"download from {url} failed ({_reason(exc, url)}); put the file at {mirror_hint} instead",
            dataset=dataset,
            file=name,
            check="retrieve",
        ) from None
    except ValueError as exc:  # pooch: the content does not match known_hash
        if downloader.sink is None or "hash" not in str(exc):
            raise
        actual = downloader.sink.digest.hexdigest()
        raise PbufDataError(
            f"downloaded file from {url} has sha256 {actual}, the registry pins {sha256}: not kept",
            dataset=dataset,
            file=name,
            check="sha256 pin",
        ) from None
    return sha256
