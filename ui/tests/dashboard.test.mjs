// The dashboard in a real browser (Debian's chromium through playwright-core) against a real
// server seeded with environments (local agents), queues with dead letters, a workflow and its
// executions, a schedule and the built-in alerts: every page renders without console errors or
// failed requests and passes axe-core's serious checks; actions taken in the page change the
// fleet and the queues; an execution's page follows it live; a viewer sees no write actions.
// Screenshots of every page go to $DROVER_SCREENSHOTS.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { ADMIN, Server, chromiumPath, makeRepo, tempDir, waitFor } from './harness.mjs';

const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const shots = process.env.DROVER_SCREENSHOTS || tempDir('drover-ui-shots-');
mkdirSync(shots, { recursive: true });

let server, browser, viewerKey, executionId;

before(async () => {
  // The metric history is recorded every second here (a minute by default), for the charts.
  server = await new Server(process.env.DROVER_BIN, ['--history-step', '1s', '--alert-interval', '250ms']).start();
  const repo = makeRepo(join(server.dir, 'repo'));
  await server.api('PUT', '/v1/environments/web', {
    provider: 'local', capacity: 2,
    agent: { repository: repo, main_run: './run.sh', interval: 3600 },
    health: { heartbeat_interval: '1s' },
  });
  await server.api('PUT', '/v1/environments/api', { provider: 'static', capacity: 1 });
  await server.api('PUT', '/v1/queues/jobs-dlq', {});
  await server.api('PUT', '/v1/queues/jobs', { dead_letter_queue: 'jobs-dlq', max_receives: 1 });
  for (let i = 0; i < 3; i++) await server.api('POST', '/v1/queues/jobs/messages', { body: `{"job":${i}}` });
  // Received once and not acked: the next receive moves them to the dead-letter queue.
  await server.api('POST', '/v1/queues/jobs/receive', { max: 10, visibility_timeout: '0s' });
  await server.api('POST', '/v1/queues/jobs/receive', { max: 10 });
  await waitFor(async () => (await server.api('GET', '/v1/queues/jobs-dlq')).stats.visible === 3, { what: 'dead letters' });
  await server.api('PUT', '/v1/workflows/etl', {
    steps: [
      { name: 'extract', type: 'sleep', duration: '100ms' },
      { name: 'approve', type: 'wait', signal: 'go', needs: ['extract'] },
      { name: 'load', type: 'sleep', duration: '100ms', needs: ['approve'] },
    ],
  });
  const done = await server.api('POST', '/v1/workflows/etl/executions', { input: { day: '2026-12-06' } });
  await server.api('POST', `/v1/executions/${done.id}/signals/go`, { payload: {} });
  executionId = (await server.api('POST', '/v1/workflows/etl/executions', { input: { day: '2026-12-07' } })).id;
  await server.api('PUT', '/v1/schedules/nightly', {
    cron: '0 3 * * *', timezone: 'Europe/Paris', action: { type: 'scale', environment: 'api', capacity: 2 },
  });
  await server.api('PUT', '/v1/variables/cc-a-region', { value: 'eu', environment: 'web' });
  await server.api('PUT', '/v1/routes/shop', { upstreams: ['http://127.0.0.1:9'] });
  // Two minutes of the queue's history, as the cleanup records them (it runs every minute: a
  // test does not wait for two), for the charts.
  const now = Date.now();
  execFileSync('sqlite3', [join(server.dir, 'drover.db'), '.timeout 10000',
    `INSERT INTO queue_history VALUES ('default', 'jobs-dlq', ${now - 120000}, 1, 0, 0, 0, 0),` +
    ` ('default', 'jobs-dlq', ${now - 60000}, 3, 0, 0, 0, 0), ('default', 'jobs-dlq', ${now}, 3, 0, 0, 0, 0)`]);
  viewerKey = (await server.api('POST', '/v1/keys', { name: 'watcher', role: 'viewer' })).key;
  await waitFor(async () => (await server.api('GET', '/v1/environments/web')).status.running === 2, { what: 'two running instances' });
  await waitFor(() => server.api('GET', '/v1/alerts/dead-letters'), { what: 'the built-in alert rules' });
  // Traffic for the charts: API calls, requests through a route (its upstream refuses: 502s)
  // and executions, until the history holds each.
  await server.api('PUT', '/v1/workflows/tick', { steps: [{ name: 'a', type: 'sleep', duration: '1ms' }] });
  await waitFor(async () => {
    await fetch(`${server.url}/svc/shop/`, { headers: { Authorization: `Bearer ${ADMIN}` } });
    await server.api('POST', '/v1/workflows/tick/executions', {});
    const names = new Set((await server.api('GET', '/v1/metrics/history?range=1h')).series.map((x) => x.name));
    return ['api_requests', 'api_latency_us', 'gateway_requests', 'executions_started'].every((n) => names.has(n));
  }, { what: 'the metric history' });
  browser = await chromium.launch({ executablePath: chromiumPath(), args: ['--no-sandbox'] });
});

after(async () => {
  if (browser) await browser.close();
  if (server) await server.stopAndClean();
});

// A signed-in page that records console errors and failed requests.
async function signedIn(key, viewport = { width: 1280, height: 900 }) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  const problems = [];
  page.on('console', (m) => m.type() === 'error' && problems.push(`console: ${m.text()}`));
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => {
    // A stream closed by leaving its page is not a failure.
    if (!/ERR_ABORTED/.test(r.failure()?.errorText || '')) problems.push(`failed: ${r.url()} ${r.failure()?.errorText}`);
  });
  page.on('response', (r) => r.status() >= 400 && problems.push(`HTTP ${r.status()}: ${r.url()}`));
  await page.goto(`${server.url}/ui/`);
  await page.fill('#key', key);
  await page.click('button[type=submit]');
  await page.waitForSelector('nav[aria-label=Main]');
  return { context, page, problems };
}

async function settle(page) {
  await page.waitForSelector('h1');
  try {
    await page.waitForFunction(() => !document.body.innerText.includes('Loading…'), null, { timeout: 30000 });
  } catch (e) {
    throw new Error(`${page.url()} is still loading: ${(await page.innerText('main')).slice(0, 600)}`);
  }
}

async function axe(page) {
  await page.evaluate(axeSource);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  return result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join(', ')})`);
}

const pages = () => [
  ['overview', '/ui/', 'Overview'],
  ['environments', '/ui/environments', 'Environments'],
  ['environment', '/ui/environments/web', 'Environment web'],
  ['executions', '/ui/executions', 'Executions'],
  ['execution', `/ui/executions/${executionId}`, `Execution ${executionId}`],
  ['workflows', '/ui/workflows', 'Workflows'],
  ['queues', '/ui/queues', 'Queues and topics'],
  ['queue', '/ui/queues/jobs-dlq', 'Queue jobs-dlq'],
  ['variables', '/ui/variables', 'Variables'],
  ['schedules', '/ui/schedules', 'Schedules'],
  ['schedule', '/ui/schedules/nightly', 'Schedule nightly'],
  ['routes', '/ui/routes', 'Routes'],
  ['alerts', '/ui/alerts', 'Alerts'],
  ['alert', '/ui/alerts/dead-letters', 'Alert dead-letters'],
  ['audit', '/ui/audit', 'Audit log'],
  ['keys', '/ui/keys', 'Keys'],
];

test('every page renders without errors and passes axe-core', async () => {
  const { context, page, problems } = await signedIn(ADMIN);
  const violations = [];
  for (const [name, path, title] of pages()) {
    await page.goto(server.url + path);
    await settle(page);
    assert.equal(await page.textContent('h1'), title, `${path} heading`);
    await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
    for (const v of await axe(page)) violations.push(`${path}: ${v}`);
  }
  // A phone's width: the same pages lay out without a horizontal scroll of the page.
  await page.setViewportSize({ width: 390, height: 844 });
  for (const [name, path] of [['overview-phone', '/ui/'], ['environment-phone', '/ui/environments/web']]) {
    await page.goto(server.url + path);
    await settle(page);
    const wide = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1);
    assert.equal(wide, false, `${path} scrolls sideways on a phone`);
    await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
  }
  assert.deepEqual(violations, []);
  assert.deepEqual(problems, []);
  await context.close();
});

test('the overview and the routes chart the metrics of the last hour', async () => {
  const { context, page, problems } = await signedIn(ADMIN);
  for (const title of ['API requests per second', 'API latency (ms)', 'Executions per minute']) {
    await page.waitForSelector(`figure[aria-label="${title}"] canvas`);
  }
  assert.match(await page.textContent('figure[aria-label="API latency (ms)"]'), /p95/);
  await page.goto(`${server.url}/ui/routes`);
  await page.waitForSelector('figure[aria-label="Requests per second, busiest routes"] canvas');
  assert.match(await page.textContent('figure[aria-label="Requests per second, busiest routes"]'), /shop/);
  assert.deepEqual(problems, []);
  await context.close();
});

test('scaling an environment from the page changes the fleet', async () => {
  const { context, page, problems } = await signedIn(ADMIN);
  await page.goto(`${server.url}/ui/environments/web`);
  await settle(page);
  await page.fill('#capacity', '3');
  await page.click('form button[type=submit]:has-text("Scale")');
  await waitFor(async () => (await server.api('GET', '/v1/environments/web')).status.running === 3, { what: 'a third running instance' });
  // The page shows it without a reload (the change feed).
  await page.waitForFunction(() => document.body.innerText.includes('3 running of 3'), null, { timeout: 30000 });
  assert.deepEqual(problems, []);
  await context.close();
});

test('redriving a dead-letter queue from the page moves its messages back', async () => {
  const { context, page, problems } = await signedIn(ADMIN);
  await page.goto(`${server.url}/ui/queues/jobs-dlq`);
  await settle(page);
  // The last hour as charts (uPlot draws into a canvas).
  await page.waitForSelector('figure[aria-label="Depth"] canvas');
  // The dead letters, with their bodies, before they go.
  const bodies = await page.$$eval('table[aria-label=Messages] tbody tr td:last-child', (tds) => tds.map((t) => t.textContent));
  assert.deepEqual(bodies, ['{"job":0}', '{"job":1}', '{"job":2}']);
  await page.click('button:has-text("Redrive")');
  await page.click('dialog[open] button.primary:has-text("Redrive")');
  await page.waitForSelector('text=3 messages moved back');
  const jobs = await server.api('GET', '/v1/queues/jobs');
  const dlq = await server.api('GET', '/v1/queues/jobs-dlq');
  assert.equal(dlq.stats.visible, 0);
  assert.equal(jobs.stats.visible, 3);
  assert.deepEqual(problems, []);
  await context.close();
});

test("an execution's page follows it live", async () => {
  const { context, page, problems } = await signedIn(ADMIN);
  await page.goto(`${server.url}/ui/executions/${executionId}`);
  await settle(page);
  await page.waitForSelector('dd .badge:has-text("running")');
  // The graph: extract → approve → load, each box in its step's status.
  await page.waitForSelector('.dag a[aria-label="approve: waiting"], .dag a[aria-label="approve: running"]');
  assert.equal(await page.locator('.dag a').count(), 3);
  assert.equal(await page.locator('.dag path.dag-edge').count(), 2);
  await server.api('POST', `/v1/executions/${executionId}/signals/go`, { payload: {} });
  await page.waitForSelector('dd .badge:has-text("succeeded")', { timeout: 30000 });
  await page.waitForSelector('.dag a[aria-label="load: succeeded"]');
  assert.ok((await page.textContent('table[aria-label="Execution events"]')).includes('execution_succeeded'));
  assert.deepEqual(problems, []);
  await context.close();
});

test('a viewer key sees no write actions', async () => {
  const { context, page, problems } = await signedIn(viewerKey);
  const writes = ['Scale', 'Stop', 'Delete', 'Redrive', 'Purge', 'Create key', 'Revoke', 'Trigger now', 'Silence 1h', 'Cancel', 'Retry'];
  for (const path of ['/ui/environments/web', '/ui/queues/jobs-dlq', '/ui/keys', '/ui/schedules/nightly', '/ui/alerts/dead-letters', `/ui/executions/${executionId}`]) {
    await page.goto(server.url + path);
    await settle(page);
    const buttons = await page.$$eval('button', (bs) => bs.map((b) => b.textContent.trim()));
    for (const w of writes) assert.ok(!buttons.includes(w), `${path} offers "${w}" to a viewer`);
  }
  assert.ok((await page.textContent('.who')).includes('viewer'));
  assert.deepEqual(problems, []);
  await context.close();
});

test('signing out forgets the key', async () => {
  const { context, page } = await signedIn(ADMIN);
  await page.click('text=Sign out');
  await page.waitForSelector('#key');
  assert.equal(await page.evaluate(() => sessionStorage.getItem('drover.key')), null);
  assert.ok(!page.url().includes(ADMIN));
  await context.close();
});

test('a drover ui link signs the browser in, and signing out ends that session', async () => {
  const { url } = await server.api('POST', '/v1/ui/open', undefined, viewerKey);
  const context = await browser.newContext();
  const page = await context.newPage();
  const problems = [];
  page.on('console', (m) => m.type() === 'error' && problems.push(`console: ${m.text()}`));
  page.on('response', (r) => r.status() >= 400 && problems.push(`HTTP ${r.status()}: ${r.url()}`));
  await page.goto(server.url + url);
  await page.waitForSelector('nav[aria-label=Main]');
  assert.equal(new URL(page.url()).search, '', 'the code leaves the address bar');
  assert.ok((await page.textContent('.who')).includes('watcher · viewer'));
  assert.equal(await page.evaluate(() => sessionStorage.getItem('drover.key')), null, 'no key in the page');
  assert.equal(await page.evaluate(() => document.cookie), '', 'the session cookie is not readable by scripts');
  const [cookie] = await context.cookies(server.url + '/v1/status');
  assert.equal(cookie?.name, 'drover_ui');
  // A new tab of the same browser is signed in too (the cookie, not the tab, holds it).
  const second = await context.newPage();
  await second.goto(`${server.url}/ui/queues`);
  await second.waitForSelector('nav[aria-label=Main]');
  await second.close();
  await page.click('text=Sign out');
  await page.waitForSelector('#key');
  const replay = await fetch(`${server.url}/v1/status`, { headers: { Cookie: `drover_ui=${cookie.value}`, 'X-Drover-UI': '1' } });
  assert.equal(replay.status, 401, 'the ended session opens nothing, even with its old cookie');
  await page.goto(`${server.url}/ui/`);
  await page.waitForSelector('#key');
  assert.deepEqual(problems, []);
  await context.close();
});
