#!/usr/bin/env python3
"""A small HTTP/1.1 service for the gateway's tests: an upstream that can echo, stream, stall,
fail on purpose and speak WebSocket. Standard library only.

  gateway_upstream.py [--port N] [--name NAME] [--idle-close SECONDS]
  (the port defaults to $PORT; --idle-close closes a kept-alive connection idle that long)

GET  /whoami            {"name", "method", "path", "headers"} as JSON
ANY  /echo              the request body back (same length), streamed
GET  /bytes?n=N         N bytes, streamed in 64 KiB pieces, with a Content-Length
POST /sink              reads the body; {"bytes": N, "sha256": HEX}
GET  /slow?ms=N         answers after N ms
ANY  /status/N          answers status N
GET  /ws                WebSocket: echoes every text or binary message
GET  /healthz           200
GET  /hits              {"hits": N}: requests answered so far (not counting these)
POST /record            keeps the body (a webhook receiver); GET /recorded: every body kept

It prints "PORT PID" on its first line of output.
"""
import argparse
import base64
import hashlib
import json
import os
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

PIECE = 64 * 1024
NAME = "upstream"
HITS = 0
HITS_LOCK = threading.Lock()
RECORDED = []


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet
        pass

    def body_pieces(self):
        """Yields the request body in pieces (Content-Length or chunked)."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return
                left = size
                while left:
                    data = self.rfile.read(min(left, PIECE))
                    if not data:
                        return
                    left -= len(data)
                    yield data
                self.rfile.readline()
        else:
            left = int(self.headers.get("Content-Length") or 0)
            while left:
                data = self.rfile.read(min(left, PIECE))
                if not data:
                    return
                left -= len(data)
                yield data

    def answer(self, status, body=b"", ctype="application/json", extra=None):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def handle_any(self):
        global HITS
        url = urlsplit(self.path)
        q = parse_qs(url.query)
        path = url.path
        if path == "/hits":
            with HITS_LOCK:
                n = HITS
            return self.answer(200, json.dumps({"hits": n}).encode())
        if path == "/recorded":
            with HITS_LOCK:
                body = json.dumps(RECORDED)
            return self.answer(200, body.encode())
        with HITS_LOCK:
            HITS += 1
        if path == "/record":
            data = b"".join(self.body_pieces()).decode()
            with HITS_LOCK:
                RECORDED.append(json.loads(data))
            return self.answer(204)
        if path.endswith("/whoami"):  # under any prefix (a route's base path)
            for _ in self.body_pieces():
                pass
            body = json.dumps({"name": NAME, "method": self.command, "path": self.path,
                               "headers": {k.lower(): v for k, v in self.headers.items()}})
            return self.answer(200, body.encode(), extra={"X-Upstream": NAME})
        if path == "/healthz":
            return self.answer(200, b"ok", "text/plain")
        if path == "/echo":
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                data = b"".join(self.body_pieces())
                return self.answer(200, data, "application/octet-stream")
            n = int(self.headers.get("Content-Length") or 0)
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(n))
            self.end_headers()
            for piece in self.body_pieces():
                self.wfile.write(piece)
            return
        if path == "/bytes":
            n = int(q.get("n", ["0"])[0])
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(n))
            self.end_headers()
            chunk = b"x" * PIECE
            while n > 0:
                self.wfile.write(chunk[:min(n, PIECE)])
                n -= PIECE
            return
        if path == "/sink":
            h = hashlib.sha256()
            total = 0
            for piece in self.body_pieces():
                h.update(piece)
                total += len(piece)
            body = json.dumps({"bytes": total, "sha256": h.hexdigest()})
            return self.answer(200, body.encode())
        if path == "/slow":
            time.sleep(int(q.get("ms", ["1000"])[0]) / 1000)
            return self.answer(200, b'{"slow":true}')
        if path.startswith("/status/"):
            for _ in self.body_pieces():
                pass
            return self.answer(int(path[len("/status/"):]), b'{"status":"asked"}')
        if path == "/ws":
            return self.websocket()
        return self.answer(404, b'{"error":"no such path"}')

    def websocket(self):
        key = self.headers.get("Sec-WebSocket-Key", "")
        accept = base64.b64encode(hashlib.sha1(
            (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        self.wfile.flush()
        while True:
            head = self.rfile.read(2)
            if len(head) < 2:
                return
            opcode = head[0] & 0x0F
            n = head[1] & 0x7F
            if n == 126:
                n = struct.unpack(">H", self.rfile.read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self.rfile.read(8))[0]
            mask = self.rfile.read(4) if head[1] & 0x80 else b"\0\0\0\0"
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(self.rfile.read(n)))
            if opcode == 8:  # close
                self.wfile.write(b"\x88\x00")
                return
            frame = bytes([0x80 | opcode])
            if len(data) < 126:
                frame += bytes([len(data)])
            elif len(data) < 65536:
                frame += bytes([126]) + struct.pack(">H", len(data))
            else:
                frame += bytes([127]) + struct.pack(">Q", len(data))
            self.wfile.write(frame + data)
            self.wfile.flush()

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = handle_any


def main():
    global NAME
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=int(os.environ.get("PORT", "0")))
    p.add_argument("--name", default=os.environ.get("UPSTREAM_NAME", "upstream"))
    p.add_argument("--idle-close", type=float, default=None)
    a = p.parse_args()
    NAME = a.name
    if a.idle_close:
        Handler.timeout = a.idle_close  # the socket timeout ends an idle connection
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.allow_reuse_address = True
    server = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    print(server.server_address[1], os.getpid(), flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
