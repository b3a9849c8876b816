#!/usr/bin/env python3
"""Fleet controller at scale: ENVS static environments x PER_ENV simulated agents, one process.
Setup: PUT every environment (static provider, heartbeat_interval INTERVAL), join PER_ENV
instances each. Then every instance heartbeats once per INTERVAL, spread evenly (ENVS*PER_ENV /
INTERVAL heartbeats/s) over a few keep-alive connections. After one warm-up interval the measured
window of MEASURE s starts: the server's CPU (from /proc) and RSS are sampled, SILENT instances stop
heartbeating (the controller must mark each unhealthy at its deadline: the "deadline" lag), and
SCALES scale calls per second change random environments (the "change" lag: notification to
reconciled). The lags come from the server's drover_fleet_reconcile_lag_seconds histogram.
Bounded: the setup has per-request timeouts, the load runs warm-up + MEASURE seconds."""
import argparse, asyncio, json, random, statistics, sys, time, urllib.parse


class Conn:
    def __init__(self, addr):
        self.u = urllib.parse.urlparse(addr)
        self.r = self.w = None

    async def do(self, method, target, token, body=None):
        for attempt in range(2):  # the server closes idle keep-alive connections: reopen once
            if self.w is None:
                self.r, self.w = await asyncio.open_connection(self.u.hostname, self.u.port)
            try:
                return await self.once(method, target, token, body)
            except (ConnectionError, IndexError):
                self.w = None
                if attempt:
                    raise

    async def once(self, method, target, token, body):
        data = json.dumps(body).encode() if body is not None else b""
        head = f"{method} {target} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
        self.w.write(head.encode() + b"\r\n" + data)
        status = await asyncio.wait_for(self.r.readline(), 30)
        n = 0
        while True:
            line = await self.r.readline()
            if line in (b"\r\n", b""):
                break
            k, _, v = line.decode().partition(":")
            if k.strip().lower() == "content-length":
                n = int(v)
        payload = await self.r.readexactly(n) if n else b""
        return int(status.split()[1]), payload


async def parallel(addr, jobs, width):
    """Runs the (method, target, token, body) jobs over `width` connections; their answers."""
    out = [None] * len(jobs)
    nxt = iter(range(len(jobs)))

    async def worker():
        c = Conn(addr)
        for i in nxt:
            out[i] = await c.do(*jobs[i])

    await asyncio.gather(*(worker() for _ in range(width)))
    return out


def proc_cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100.0  # utime + stime, CLK_TCK 100


def proc_rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def histogram(metrics, name, label=""):
    """[(le, cumulative count)] of histogram `name` (on lines containing `label`)."""
    out = []
    for line in metrics.splitlines():
        if line.startswith(name + "_bucket") and label in line:
            le = line.split('le="')[1].split('"')[0]
            out.append((float("inf") if le == "+Inf" else float(le), int(float(line.split()[-1]))))
    return out


def quantile(before, after, q):
    """Upper bound of the q-quantile of what was observed between two histogram reads."""
    counts = [(le, a - b) for (le, a), (_, b) in zip(after, before)]
    total = counts[-1][1] if counts else 0
    if total == 0:
        return None, 0
    for le, c in counts:
        if c >= q * total:
            return le, total
    return float("inf"), total


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--server", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--pid", type=int, required=True, help="server pid (CPU and RSS)")
    p.add_argument("--envs", type=int, default=1000)
    p.add_argument("--per-env", type=int, default=10)
    p.add_argument("--interval", type=float, default=10)
    p.add_argument("--measure", type=float, default=60)
    p.add_argument("--silent", type=int, default=100)
    p.add_argument("--scales", type=float, default=2)
    p.add_argument("--conns", type=int, default=16)
    a = p.parse_args()

    t = time.monotonic()
    names = [f"fleet-{i:04d}" for i in range(a.envs)]
    spec = lambda: {"provider": "static", "capacity": a.per_env,
                    "health": {"heartbeat_interval": f"{int(a.interval)}s"}}
    res = await parallel(a.server, [("PUT", f"/v1/environments/{n}", a.token, spec()) for n in names], 8)
    if any(s not in (200, 201) for s, _ in res):
        sys.exit(f"error: PUT environment: {[r for r in res if r[0] not in (200, 201)][:1]}")
    tokens = {n: json.loads(b)["status"]["join_token"] if "status" in json.loads(b) else json.loads(b)["join_token"]
              for n, (_, b) in zip(names, res)}
    jobs = [("POST", f"/v1/environments/{n}/join", tokens[n], {"hostname": f"{n}-{k}"})
            for n in names for k in range(a.per_env)]
    res = await parallel(a.server, jobs, 8)
    if any(s != 201 for s, _ in res):
        sys.exit(f"error: join: {[r for r in res if r[0] != 201][:1]}")
    agents = [(json.loads(b)["instance_id"], json.loads(b)["agent_key"]) for _, b in res]
    print(f"setup: {a.envs} environments, {len(agents)} instances joined in {time.monotonic() - t:.1f} s",
          flush=True)

    n = len(agents)
    silent = set(random.sample(range(n), min(a.silent, n // 10)))
    start = time.monotonic() + 0.5
    measure_from = start + a.interval  # after one warm-up round
    end = measure_from + a.measure
    hb_lat, errors = [], 0

    async def heartbeats(w):
        nonlocal errors
        c = Conn(a.server)
        mine = list(range(w, n, a.conns))
        r = 0
        while True:
            for i in mine:
                due = start + r * a.interval + a.interval * i / n
                if due >= end:
                    return
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                if i in silent and due >= measure_from:
                    continue
                inst, key = agents[i]
                t0 = time.monotonic()
                s, _ = await c.do("POST", f"/v1/instances/{inst}/heartbeat", key,
                                  {"agent_version": "sim", "skipped_runs": 0})
                if due >= measure_from:
                    hb_lat.append((time.monotonic() - t0) * 1000)
                if s != 200:
                    errors += 1
            r += 1

    async def scaler():
        c = Conn(a.server)
        await asyncio.sleep(max(0.0, measure_from - time.monotonic()))
        k = 0
        while time.monotonic() < end - 1:
            name = random.choice(names)
            s, _ = await c.do("POST", f"/v1/environments/{name}/scale", a.token,
                              {"capacity": a.per_env + (k % 2)})
            if s != 200:
                print(f"scale: {s}", file=sys.stderr)
            k += 1
            await asyncio.sleep(1 / a.scales)

    async def sampler():
        c = Conn(a.server)
        await asyncio.sleep(max(0.0, measure_from - time.monotonic()))
        _, m0 = await c.do("GET", "/metrics", a.token)
        cpu0, t0 = proc_cpu(a.pid), time.monotonic()
        rss = []
        while time.monotonic() < end:
            rss.append(proc_rss_mb(a.pid))
            await asyncio.sleep(1)
        cpu = (proc_cpu(a.pid) - cpu0) / (time.monotonic() - t0)
        # Silent instances are due 3 intervals after their last heartbeat: wait for the last ones.
        await asyncio.sleep(1)
        _, m1 = await c.do("GET", "/metrics", a.token)
        return cpu, rss, m0.decode(), m1.decode()

    tasks = [asyncio.create_task(heartbeats(w)) for w in range(a.conns)]
    cpu, rss, m0, m1 = await sampler_task(sampler, scaler)
    await asyncio.gather(*tasks)
    hb_lat.sort()
    print(f"heartbeats: {len(hb_lat) / a.measure:.0f}/s measured, p50 {statistics.median(hb_lat):.2f} ms, "
          f"p99 {hb_lat[int(len(hb_lat) * 0.99)]:.2f} ms, errors {errors}")
    print(f"server CPU: {cpu * 100:.1f} % of one core; RSS max {max(rss):.0f} MB (median {statistics.median(rss):.0f} MB)")
    for trig in ("change", "deadline"):
        lag = "drover_fleet_reconcile_lag_seconds"
        b0, b1 = histogram(m0, lag, f'trigger="{trig}"'), histogram(m1, lag, f'trigger="{trig}"')
        q50, total = quantile(b0, b1, 0.5)
        q99, _ = quantile(b0, b1, 0.99)
        print(f"reconcile lag ({trig}): {total} observed, p50 <= {q50} s, p99 <= {q99} s")


async def sampler_task(sampler, scaler):
    s = asyncio.create_task(scaler())
    out = await sampler()
    await s
    return out


if __name__ == "__main__":
    asyncio.run(main())
