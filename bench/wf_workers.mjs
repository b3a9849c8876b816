// One-step task workflows completed end to end by WORKERS HTTP workers (bench/workflows.sh).
// Starts N executions (CONC in flight), then times the workers: each receives up to 10 tasks,
// reports each (complete, attempt from the protocol), then acks them in one batch -- until N
// completions were answered 200. Uses the peer harness's undici (bench/peers/node_modules).
// Env: DROVER_ADDR, TOKEN, N (20000), WORKERS (16), CONC (64), QUEUE (tasks), WORKFLOW (one).
import { createRequire } from 'module';
const require = createRequire(new URL('./peers/bench.mjs', import.meta.url));
const { Pool } = require('undici');
const env = process.env;
const N = +(env.N || 20000), WORKERS = +(env.WORKERS || 16), CONC = +(env.CONC || 64);
const Q = env.QUEUE || 'tasks', WF = env.WORKFLOW || 'one';
const hdrs = { authorization: `Bearer ${env.TOKEN}`, 'content-type': 'application/json' };
const pool = new Pool(env.DROVER_ADDR, { connections: Math.max(CONC, WORKERS + 1), pipelining: 1 });
async function call(method, path, body, ok = [200, 201, 204, 409]) {
  const r = await pool.request({ method, path, headers: hdrs, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.body.text();
  if (!ok.includes(r.statusCode)) throw new Error(`${method} ${path}: ${r.statusCode} ${text.slice(0, 200)}`);
  return { status: r.statusCode, body: text ? JSON.parse(text) : null };
}
const deadline = Date.now() + 300_000;
let started = 0;
const t0 = performance.now();
await Promise.all(Array.from({ length: CONC }, async () => {
  while (started < N && Date.now() < deadline) { started++; await call('POST', `/v1/workflows/${WF}/executions`, { input: { i: started } }); }
}));
const startSeconds = (performance.now() - t0) / 1000;
let completed = 0, stale = 0;
const t1 = performance.now();
await Promise.all(Array.from({ length: WORKERS }, async () => {
  while (completed < N && Date.now() < deadline) {
    const r = await call('POST', `/v1/queues/${Q}/receive`, { max: 10, wait: '1s' });
    const msgs = r.body.messages || [];
    for (const m of msgs) {
      const task = JSON.parse(m.body);
      const attempt = task.attempt + m.receive_count - 1;
      const done = await call('POST', `/v1/executions/${task.execution}/steps/${task.step}/complete`, { attempt, output: { ok: true } });
      if (done.status === 200) completed++; else stale++;
    }
    if (msgs.length) await call('POST', `/v1/queues/${Q}/ack`, { receipts: msgs.map((m) => m.receipt) });
  }
}));
const runSeconds = (performance.now() - t1) / 1000;
console.log(JSON.stringify({ started, startSeconds: +startSeconds.toFixed(3), startRate: Math.round(started / startSeconds),
  completed, stale, seconds: +runSeconds.toFixed(3), rate: Math.round(completed / runSeconds), workers: WORKERS }));
await pool.close();
