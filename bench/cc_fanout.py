#!/usr/bin/env python3
"""N simulated agents in blocking queries on GET /v1/cc/agent (one process, asyncio, one
keep-alive connection each, spread round-robin over the given servers). For each of C changes:
wait until every query is parked (the servers' in-flight gauge), PUT a variable of the agents'
environment through the first server, and time from sending the PUT until every agent has an
answer with the new index (the PUT's own round trip included). Prints per-change figures and p50/p99 over the changes.
Bounded: C changes, each with a 60 s deadline."""
import argparse, asyncio, json, statistics, sys, time, urllib.parse


async def request(reader, writer, method, target, token, body=b""):
    head = f"{method} {target} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
    if body:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    writer.write(head.encode() + b"\r\n" + body)
    await writer.drain()
    status_line = await reader.readline()
    headers = {}
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        k, _, v = line.decode().partition(":")
        headers[k.strip().lower()] = v.strip()
    n = int(headers.get("content-length", "0"))
    data = await reader.readexactly(n) if n else b""
    return int(status_line.split()[1]), headers, data


async def in_flight(addr, token):
    u = urllib.parse.urlparse(addr)
    r, w = await asyncio.open_connection(u.hostname, u.port)
    _, _, body = await request(r, w, "GET", "/metrics", token)
    w.close()
    for line in body.decode().splitlines():
        if line.startswith("drover_http_requests_in_flight"):
            return int(float(line.split()[-1]))
    return 0


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--servers", required=True, help="comma-separated http://host:port")
    p.add_argument("--token", required=True)
    p.add_argument("--environment", required=True)
    p.add_argument("--agents", type=int, default=1000)
    p.add_argument("--changes", type=int, default=20)
    a = p.parse_args()
    servers = a.servers.split(",")
    target = f"/v1/cc/agent?environment={a.environment}"
    conns = []
    for i in range(a.agents):
        u = urllib.parse.urlparse(servers[i % len(servers)])
        conns.append(await asyncio.open_connection(u.hostname, u.port))
    u0 = urllib.parse.urlparse(servers[0])
    put_conn = await asyncio.open_connection(u0.hostname, u0.port)
    # Each agent's current index.
    index = []
    for r, w in conns:
        _, h, _ = await request(r, w, "GET", target, a.token)
        index.append(int(h["x-drover-index"]))

    results = []
    for change in range(a.changes):
        arrivals = [None] * a.agents
        new_index = [None] * a.agents

        async def agent(i):
            r, w = conns[i]
            status, h, _ = await request(r, w, "GET", f"{target}&index={index[i]}&wait=60s", a.token)
            arrivals[i] = time.monotonic()
            new_index[i] = int(h["x-drover-index"])

        tasks = [asyncio.create_task(agent(i)) for i in range(a.agents)]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            parked = sum([await in_flight(s, a.token) for s in servers]) - len(servers)
            if parked >= a.agents:
                break
            await asyncio.sleep(0.05)
        body = json.dumps({"value": f"v{change}-{time.time()}", "environment": a.environment}).encode()
        t_put = time.monotonic()  # latencies count from sending the PUT
        status, _, _ = await request(*put_conn, "PUT", "/v1/variables/cc-a-build-tag", a.token, body)
        t_ack = time.monotonic()
        assert status in (200, 201), status
        await asyncio.wait_for(asyncio.gather(*tasks), 60)
        moved = sum(1 for i in range(a.agents) if new_index[i] > index[i])
        lat = sorted((t - t_put) * 1000 for t in arrivals)
        results.append((lat[-1], lat[len(lat) // 2], (t_ack - t_put) * 1000))
        print(f"change {change + 1}: {moved}/{a.agents} agents have the new index; "
              f"all by {lat[-1]:.1f} ms after the PUT was sent "
              f"(median agent {lat[len(lat) // 2]:.1f} ms; PUT took {(t_ack - t_put) * 1000:.1f} ms)")
        if moved != a.agents:
            print("error: not every agent saw the change", file=sys.stderr)
            sys.exit(1)
        index = new_index
    alls = sorted(r[0] for r in results)
    p99 = alls[min(len(alls) - 1, int(round(0.99 * (len(alls) - 1))))]
    print(f"over {len(results)} changes: time until all {a.agents} agents have the new index: "
          f"p50 {statistics.median(alls):.1f} ms, p99 {p99:.1f} ms, max {alls[-1]:.1f} ms "
          f"(goal: p99 < 1000 ms)")


asyncio.run(main())
