"""An open-loop HTTP load client that costs little: raw sockets, one `selectors` loop, its own
process. bench/api_latency.py runs it against bare FastAPI and against Stepline in turn.

    python bench/loadgen.py --port 8000 --rate 200 --seconds 10 [--warmup 1] > latencies.json

Open loop: request k is due at start + k / rate whatever the server is doing, on an idle
keep-alive connection (a new one is opened when all are busy), and its latency runs from the
time it was due to the last byte of the response. So a slow server or a late client shows up in
the figures instead of quietly lowering the rate (no coordinated omission). Each request is a
webhook-shaped POST signed with HMAC-SHA256 and carrying its own delivery id; all of them are
built before the clock starts. Prints one JSON object: latencies in ms, status counts, and how
late the client itself was at worst. Standard library only.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import hmac
import json
import selectors
import socket
import sys
import time
import uuid

__all__ = ["build_requests", "run"]

SECRET = b"bench-secret"


def signed_body(i: int) -> tuple[bytes, str]:
    body = json.dumps({"action": "opened", "number": i, "repository": "bench/bench"}).encode()
    return body, "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()


def build_requests(count: int, port: int, run_id: str) -> list[bytes]:
    out = []
    for i in range(count):
        body, signature = signed_body(i)
        head = (
            f"POST /hook HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n"
            f"content-type: application/json\r\ncontent-length: {len(body)}\r\n"
            f"x-signature: {signature}\r\nx-delivery: {run_id}-{i}\r\n\r\n"
        )
        out.append(head.encode() + body)
    return out


class _Conn:
    __slots__ = ("buf", "due", "request", "retried", "sock")

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self.buf = b""
        self.due = 0.0
        self.request = b""
        self.retried = False  # the request in flight is a resend after a closed connection

    def send(self, request: bytes, due: float, *, retried: bool = False) -> None:
        self.due, self.request, self.retried = due, request, retried
        self.sock.sendall(request)  # a few hundred bytes: the socket buffer takes them

    def response_done(self) -> int | None:
        """The status code once a whole response is in `buf` (which is then emptied)."""
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return None
        head = self.buf[:end].decode("latin-1").lower()
        length = 0
        for line in head.split("\r\n")[1:]:
            if line.startswith("content-length:"):
                length = int(line.split(":", 1)[1])
        if len(self.buf) < end + 4 + length:
            return None
        self.buf = self.buf[end + 4 + length :]
        return int(head.split(" ", 2)[1])


def run(
    port: int, rate: float, seconds: float, warmup: float, connections: int
) -> dict[str, object]:
    total = int(rate * (warmup + seconds))
    requests = build_requests(total, port, uuid.uuid4().hex[:8])
    sel = selectors.DefaultSelector()
    # First in, first out: every connection is used every few dozen ms, so none sits idle past
    # the server's keep-alive timeout (uvicorn: 5 s) and gets closed under us.
    idle = collections.deque(_Conn(port) for _ in range(connections))
    statuses: dict[str, int] = {}
    latencies: list[float] = []
    worst_late = 0.0
    outstanding = 0
    opened = connections
    reconnects = 0
    first_measured = int(rate * warmup)
    start = time.perf_counter() + 0.05
    k = 0
    deadline = start + warmup + seconds + 30
    while (k < total or outstanding) and time.perf_counter() < deadline:
        now = time.perf_counter()
        while k < total and start + k / rate <= now:
            if not idle:
                idle.append(_Conn(port))
                opened += 1
            conn = idle.popleft()
            conn.send(requests[k], start + k / rate)
            worst_late = max(worst_late, now - conn.due)
            sel.register(conn.sock, selectors.EVENT_READ, (conn, k >= first_measured))
            outstanding += 1
            k += 1
        wait = max(0.0, start + k / rate - time.perf_counter()) if k < total else 0.5
        for key, _ in sel.select(wait):
            conn, measured = key.data
            try:
                chunk = conn.sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:  # closed before answering: send it again, on a new connection
                if conn.buf or conn.retried:
                    raise SystemExit("loadgen: the server closed a connection without answering")
                sel.unregister(conn.sock)
                conn.sock.close()
                fresh = _Conn(port)
                fresh.send(conn.request, conn.due, retried=True)  # latency still from `due`
                sel.register(fresh.sock, selectors.EVENT_READ, (fresh, measured))
                reconnects += 1
                continue
            conn.buf += chunk
            status = conn.response_done()
            if status is None:
                continue
            done = time.perf_counter()
            sel.unregister(conn.sock)
            outstanding -= 1
            idle.append(conn)
            if measured:
                latencies.append((done - conn.due) * 1000)
                statuses[str(status)] = statuses.get(str(status), 0) + 1
    return {
        "latencies_ms": latencies,
        "statuses": statuses,
        "unanswered": outstanding,
        "reconnects": reconnects,
        "worst_client_lag_ms": worst_late * 1000,
        "connections": opened,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=1, help="seconds sent but not measured")
    parser.add_argument("--connections", type=int, default=16, help="opened before the start")
    args = parser.parse_args()
    result = run(args.port, args.rate, args.seconds, args.warmup, args.connections)
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
