// The dashboard with a large fleet, in the browser the tests use (Debian's chromium):
// 1. time to a rendered overview with ENVS environments and INSTANCES instances (navigation start
//    to the environments card showing them all), REPS fresh page loads, median;
// 2. time for a change to show on an open page: a scale made through the API until the open
//    environment page shows it (no reload: the change feed), CHANGES times, median and max.
// Prints one line per measurement and a summary; bench/ui.sh records the machine line.
import { createRequire } from 'node:module';
import { ADMIN, Server, chromiumPath } from '../ui/tests/harness.mjs';

// playwright-core is installed in ui/ (make test-deps).
const { chromium } = createRequire(new URL('../ui/package.json', import.meta.url))('playwright-core');

const ENVS = Number(process.env.ENVS || 1000);
const PER = Number(process.env.PER_ENV || 10);
const REPS = Number(process.env.REPS || 5);
const CHANGES = Number(process.env.CHANGES || 20);
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor((a.length - 1) / 2)];

const server = await new Server(process.env.DROVER_BIN, ['--access-log', 'false', '--rate-limit', '0']).start();
try {
  // The floor: the same page on an empty server, in the same browser.
  const overview = async (context, envs) => {
    const page = await context.newPage();
    await page.goto(`${server.url}/ui/`);
    const ms = await page.waitForFunction((n) => {
      const card = document.querySelector('section[aria-label=Environments]');
      return card && card.innerText.includes(`in ${n} environments`) && performance.now();
    }, envs, { timeout: 120000, polling: 'raf' });
    const v = await ms.jsonValue();
    await page.close();
    return v;
  };
  const browser = await chromium.launch({ executablePath: chromiumPath(), args: ['--no-sandbox'] });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await context.addInitScript((key) => sessionStorage.setItem('drover.key', key), ADMIN);
  const empty = [];
  for (let r = 0; r < REPS; r++) empty.push(await overview(context, 0));
  console.log(`empty server: overview rendered in ${median(empty).toFixed(0)} ms (median of ${REPS})`);
  const t0 = Date.now();
  const name = (i) => `env-${String(i).padStart(4, '0')}`;
  // Environments, then their instances (static: each a join), a few requests at a time.
  const pool = async (n, fn, width = 16) => {
    let next = 0;
    await Promise.all(Array.from({ length: width }, async () => {
      while (next < n) await fn(next++);
    }));
  };
  const tokens = [];
  await pool(ENVS, async (i) => {
    const e = await server.api('PUT', `/v1/environments/${name(i)}`, { provider: 'static', capacity: PER });
    tokens[i] = e.join_token;
  });
  await pool(ENVS * PER, async (k) => {
    const i = Math.floor(k / PER);
    const r = await fetch(`${server.url}/v1/environments/${name(i)}/join`, {
      method: 'POST', headers: { Authorization: `Bearer ${tokens[i]}` },
    });
    if (r.status !== 201) throw new Error(`join: ${r.status} ${await r.text()}`);
  });
  console.log(`# seeded ${ENVS} environments and ${ENVS * PER} instances in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

  const loads = [];
  for (let r = 0; r < REPS; r++) {
    loads.push(await overview(context, ENVS));
    console.log(`overview rendered: ${loads.at(-1).toFixed(0)} ms`);
  }

  const page = await context.newPage();
  await page.goto(`${server.url}/ui/environments/${name(0)}`);
  await page.waitForSelector('#capacity');
  const shows = [];
  for (let c = 0; c < CHANGES; c++) {
    const capacity = PER + 1 + (c % 5);
    const started = Date.now();
    await server.api('POST', `/v1/environments/${name(0)}/scale`, { capacity });
    await page.waitForFunction((want) => document.body.innerText.includes(` of ${want} (scale)`), capacity, { timeout: 30000, polling: 'raf' });
    shows.push(Date.now() - started);
    console.log(`change shown after ${shows.at(-1)} ms`);
  }
  await browser.close();
  console.log(`median: overview with ${ENVS} environments and ${ENVS * PER} instances rendered in ${median(loads).toFixed(0)} ms (of ${REPS} loads; ${median(empty).toFixed(0)} ms on an empty server, ratio ${(median(empty) / median(loads)).toFixed(2)}); a change shown in ${median(shows)} ms (max ${Math.max(...shows)} ms, ${CHANGES} changes)`);
} finally {
  await server.stopAndClean();
}
