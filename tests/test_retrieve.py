"""Retrieval bounds against a loopback HTTP server (127.0.0.1 only): pin, size cap, deadline, garbage replies."""

import hashlib
import http.server
import socket
import threading
import time

import pytest

from pbuf_data import PbufDataError
from pbuf_data.read.retrieve import download

CONTENT = b"# z H sigma\n0.07 69.0 19.6\n0.09 69.0 12.0\n" * 50
PIN = hashlib.sha256(CONTENT).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path == "/good.txt":
            self._send(CONTENT)
        elif self.path == "/huge-announced.txt":
            self.send_response(200)
            self.send_header("Content-Length", str(10**9))
            self.end_headers()
            self.wfile.write(b"x" * 1000)
        elif self.path == "/huge-unannounced.txt":  # no Content-Length: only the count can stop it
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            try:
                for _ in range(64):
                    self.wfile.write(b"y" * 65536)
            except OSError:  # the client hung up at the cap
                pass
        elif self.path == "/trickle.txt":  # a byte every 0.1 s: never silent long enough for a read timeout
            self.send_response(200)
            self.send_header("Content-Length", str(len(CONTENT)))
            self.end_headers()
            try:
                for byte in CONTENT:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(0.1)
            except OSError:
                pass
        elif self.path == "/to-file":  # a redirect out of HTTP, to a local file
            self.send_response(302)
            self.send_header("Location", "file:///etc/hostname")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/stall.txt":  # one byte every 0.5 s, for at most 30 s
            self.send_response(200)
            self.send_header("Content-Length", str(len(CONTENT)))
            self.end_headers()
            try:
                for byte in CONTENT[:60]:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(0.5)
            except OSError:
                pass
        else:
            self.send_error(404)

    def _send(self, body):
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def garbage_server():
    """A TCP server on 127.0.0.1 that answers every request with bytes that are not HTTP."""
    sock = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve():
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            with conn:
                conn.recv(4096)
                conn.sendall(b"\x00\x17 SSH-2.0-not-http\r\n\r\n garbage")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    stop.set()
    thread.join()
    sock.close()


def _get(url, dest, pin=PIN, **bounds):
    bounds.setdefault("max_bytes", 1_000_000)
    return download(url, dest, pin, dataset="cc_x", name="cc_x/table.txt", mirror_hint="RAW/cc_x/table.txt", **bounds)


def _left_behind(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_good_file_is_kept_with_its_pin(server, tmp_path):
    dest = tmp_path / "cache" / "cc_x" / "table.txt"
    _get(f"{server}/good.txt", dest)
    assert dest.read_bytes() == CONTENT
    assert _left_behind(dest.parent) == ["table.txt"]


def test_wrong_hash_is_not_kept_and_names_both_hashes(server, tmp_path):
    dest = tmp_path / "cc_x" / "table.txt"
    wrong = hashlib.sha256(b"another release").hexdigest()
    with pytest.raises(PbufDataError) as err:
        _get(f"{server}/good.txt", dest, pin=wrong)
    message = str(err.value)
    assert "check 'sha256 pin'" in message and PIN in message and wrong in message and "not kept" in message
    assert _left_behind(dest.parent) == []


@pytest.mark.parametrize("path, fragment", [
    ("huge-announced.txt", "announces 1000000000 bytes, above the limit of 100000"),
    ("huge-unannounced.txt", "more than the limit of 100000 bytes received"),
])
def test_oversize_download_is_stopped(server, tmp_path, path, fragment):
    dest = tmp_path / "cc_x" / "table.txt"
    with pytest.raises(PbufDataError) as err:
        _get(f"{server}/{path}", dest, max_bytes=100_000)
    assert fragment in str(err.value) and "put the file at RAW/cc_x/table.txt instead" in str(err.value)
    assert _left_behind(dest.parent) == []


def test_slow_server_is_stopped_at_the_deadline(server, tmp_path):
    dest = tmp_path / "cc_x" / "table.txt"
    start = time.monotonic()
    with pytest.raises(PbufDataError, match=r"not complete within the deadline of 1.5 s") as err:
        _get(f"{server}/trickle.txt", dest, deadline=1.5, timeout=1.0)
    assert time.monotonic() - start < 5
    assert "check 'retrieve'" in str(err.value)
    assert _left_behind(dest.parent) == []


def test_http_error_and_garbage_reply_are_clear_errors(server, garbage_server, tmp_path):
    dest = tmp_path / "cc_x" / "table.txt"
    with pytest.raises(PbufDataError, match="HTTP 404"):
        _get(f"{server}/absent.txt", dest)
    with pytest.raises(PbufDataError, match="the server's reply is not a valid HTTP response"):
        _get(f"{garbage_server}/table.txt", dest)
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    with pytest.raises(PbufDataError, match=rf"cannot connect to 127.0.0.1:{port}\); put the file at RAW/cc_x/table.txt"):
        _get(f"http://127.0.0.1:{port}/table.txt", dest)
    assert _left_behind(dest.parent) == []


def test_a_trickling_server_is_cut_at_the_stall_limit_not_the_deadline(server, tmp_path):
    """A byte every 0.5 s: never silent for the read timeout (1 s here); cut after the 2 s stall limit, long
    before the deadline."""
    dest = tmp_path / "cc_x" / "table.txt"
    start = time.monotonic()
    with pytest.raises(PbufDataError, match=r"stalled: no block of 16384 bytes within 2 s \(0 bytes received in all\)"):
        _get(f"{server}/stall.txt", dest, deadline=600, timeout=1.0, stall=2)
    assert 2 <= time.monotonic() - start < 6
    assert _left_behind(dest.parent) == []


def test_a_redirect_to_a_local_file_is_refused_in_one_message(server, tmp_path):
    dest = tmp_path / "cc_x" / "table.txt"
    with pytest.raises(PbufDataError) as err:
        _get(f"{server}/to-file", dest)
    assert str(err.value) == (f"dataset 'cc_x' (file 'cc_x/table.txt', check 'retrieve'): download from {server}/to-file "
                              "failed (the server redirected to an address that is not HTTP or HTTPS (not followed)); "
                              "put the file at RAW/cc_x/table.txt instead")
    assert _left_behind(dest.parent) == []
