#!/usr/bin/env python3
"""10,000 schedules of `@every 10s` (1,000 firings/s) on one server: firing lag p99 (from the
server's drover_schedule_firing_lag_seconds histogram: recorded minus due) and the server's CPU,
over MEASURE s after a warm-up. Each schedule scales one of 100 static environments (a real
action: a store write and an event). Bounded: setup with per-request timeouts, a fixed window."""
import argparse, asyncio, json, sys, time

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from fleet_scale import Conn, histogram, parallel, proc_cpu, proc_rss_mb, quantile  # noqa: E402


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--server", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--schedules", type=int, default=10000)
    p.add_argument("--every", default="10s")
    p.add_argument("--measure", type=float, default=60)
    a = p.parse_args()
    t = time.monotonic()
    envs = [f"target-{i:03d}" for i in range(100)]
    res = await parallel(a.server, [("PUT", f"/v1/environments/{e}", a.token,
                                     {"provider": "static", "capacity": 1}) for e in envs], 4)
    if any(s not in (200, 201) for s, _ in res):
        sys.exit(f"error: PUT environment: {res[0]}")
    jobs = [("PUT", f"/v1/schedules/every-{i:05d}", a.token,
             {"cron": f"@every {a.every}",
              "action": {"type": "scale", "environment": envs[i % 100], "capacity": 1}})
            for i in range(a.schedules)]
    res = await parallel(a.server, jobs, 8)
    if any(s not in (200, 201) for s, _ in res):
        sys.exit(f"error: PUT schedule: {[r for r in res if r[0] not in (200, 201)][:1]}")
    print(f"setup: {a.schedules} schedules of @every {a.every} in {time.monotonic() - t:.1f} s",
          flush=True)
    await asyncio.sleep(15)  # warm-up: every schedule has fired at least once
    c = Conn(a.server)
    _, m0 = await c.do("GET", "/metrics", a.token)
    cpu0, t0 = proc_cpu(a.pid), time.monotonic()
    rss = []
    while time.monotonic() - t0 < a.measure:
        rss.append(proc_rss_mb(a.pid))
        await asyncio.sleep(1)
    cpu = (proc_cpu(a.pid) - cpu0) / (time.monotonic() - t0)
    _, m1 = await c.do("GET", "/metrics", a.token)
    name = "drover_schedule_firing_lag_seconds"
    b0, b1 = histogram(m0.decode(), name), histogram(m1.decode(), name)
    p50, n = quantile(b0, b1, 0.5)
    p99, _ = quantile(b0, b1, 0.99)
    print(f"firings: {n / a.measure:.0f}/s; lag p50 <= {p50} s, p99 <= {p99} s; "
          f"server CPU {cpu * 100:.1f} % of one core; RSS max {max(rss):.0f} MB")


if __name__ == "__main__":
    asyncio.run(main())
