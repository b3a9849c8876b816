#!/usr/bin/env python3
"""Sends log lines as one instance's agent, as fast as the server takes them, for a bounded
time: POST /v1/instances/ID/logs with batches of --batch lines on one kept-alive connection
(a 429 waits 50 ms and sends the batch again, as the agent does). Prints lines/s stored."""
import argparse
import http.client
import json
import time
import urllib.parse

p = argparse.ArgumentParser()
p.add_argument("--server", required=True)
p.add_argument("--key", required=True)
p.add_argument("--instance", required=True)
p.add_argument("--seconds", type=float, default=10)
p.add_argument("--batch", type=int, default=1000)
a = p.parse_args()

u = urllib.parse.urlparse(a.server)
conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
headers = {"Authorization": "Bearer " + a.key, "Content-Type": "application/json"}
path = "/v1/instances/%s/logs" % a.instance
sent = refused = 0
n = 0
start = time.monotonic()
end = start + a.seconds
while time.monotonic() < end:
    lines = [{"at": "2026-12-07T10:00:00.000Z", "stream": "bench",
              "line": "GET /api/items/%d 200 %d ms user=%d" % (n + i, i % 97, i)}
             for i in range(a.batch)]
    body = json.dumps({"lines": lines})
    while time.monotonic() < end:
        conn.request("POST", path, body, headers)
        r = conn.getresponse()
        r.read()
        if r.status == 202:
            sent += a.batch
            n += a.batch
            break
        if r.status != 429:
            raise SystemExit("log flood: answer %d" % r.status)
        refused += 1
        time.sleep(0.05)
elapsed = time.monotonic() - start
print("log flood: %d lines in %.1f s (%.0f lines/s), %d batches refused (429)" %
      (sent, elapsed, sent / elapsed, refused))
