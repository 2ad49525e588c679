"""A hostile "TallyPrime" for tests: an HTTP server (its own process) whose every reply is an
attack. ``python -m tests.security.hostile_tally PORT MODE LOG``:

* ``huge``: ``200`` with ``Content-Length`` of 300 MB (``HOSTILE_TALLY_BYTES``), sent as fast as
  the client reads (a well-formed envelope when read to the end);
* ``huge-chunked``: the same without a length (chunked transfer encoding), never ending;
* ``drip``: ``200``, then one byte of a well-formed envelope every second.

Every connection appends ``<mode> sent=<bytes>`` to LOG when it ends (the client hung up).
"""
from __future__ import annotations

import os
import socket
import sys
import threading
import time

HUGE = int(os.environ.get("HOSTILE_TALLY_BYTES", 300 * 1024 * 1024))  # the bench may choose
FILLER = (b"<NARRATION>" + b"x" * 4000 + b"</NARRATION>") * 16  # well-formed, endless


def _read_request(conn: socket.socket) -> None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    while len(rest) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return
        rest += chunk


def _serve(conn: socket.socket, mode: str, log: str) -> None:
    sent = 0
    try:
        _read_request(conn)
        if mode == "huge":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/xml; charset=utf-8\r\n"
                         b"Content-Length: %d\r\n\r\n" % HUGE)
            head = b"<ENVELOPE><HEADER><STATUS>1</STATUS></HEADER><BODY><DATA>"
            tail = b"</DATA></BODY></ENVELOPE>"
            conn.sendall(head)
            sent = len(head)
            while sent + len(FILLER) <= HUGE - len(tail):
                conn.sendall(FILLER)
                sent += len(FILLER)
            pad = b" " * (HUGE - len(tail) - sent)   # exactly Content-Length bytes in all
            conn.sendall(pad + tail)
            sent += len(pad) + len(tail)
        elif mode == "huge-chunked":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/xml; charset=utf-8\r\n"
                         b"Transfer-Encoding: chunked\r\n\r\n")
            first = b"<ENVELOPE><HEADER><STATUS>1</STATUS></HEADER><BODY><DATA>"
            conn.sendall(b"%x\r\n%s\r\n" % (len(first), first))
            while True:
                conn.sendall(b"%x\r\n%s\r\n" % (len(FILLER), FILLER))
                sent += len(FILLER)
        elif mode == "drip":
            body = (b"<ENVELOPE><HEADER><STATUS>1</STATUS></HEADER><BODY><DATA><COLLECTION>"
                    b"</COLLECTION></DATA></BODY></ENVELOPE>")
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/xml; charset=utf-8\r\n"
                         b"Content-Length: %d\r\n\r\n" % len(body))
            for i in range(len(body)):
                conn.sendall(body[i:i + 1])
                sent += 1
                time.sleep(1.0)
    except OSError:
        pass
    finally:
        conn.close()
        with open(log, "a") as fh:
            fh.write(f"{mode} sent={sent}\n")


def main() -> None:
    port, mode, log = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    srv = socket.create_server(("127.0.0.1", port))
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=_serve, args=(conn, mode, log), daemon=True).start()


if __name__ == "__main__":
    main()
