// A real drover server for the browser tests and the dashboard benchmark: started on a free
// loopback port with its own data directory, stopped (with its local agents) at the end.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const ADMIN = 'drv_test_admin_0123456789abcdef';

export async function waitFor(fn, { timeout = 60000, interval = 100, what = 'condition' } = {}) {
  const end = Date.now() + timeout;
  let last;
  while (Date.now() < end) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, interval));
  }
  throw new Error(`timed out waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
}

export class Server {
  constructor(bin, extra = []) {
    this.bin = bin;
    this.dir = mkdtempSync(join(tmpdir(), 'drover-ui-'));
    this.extra = extra;
  }

  async start() {
    const addrFile = join(this.dir, 'addr');
    this.proc = spawn(this.bin, ['server', '--listen', '127.0.0.1:0', '--data-dir', this.dir,
      '--addr-file', addrFile, '--threads', '2', '--providers', 'static,local',
      '--local-instances', 'stop', ...this.extra], {
      env: { ...process.env, DROVER_BOOTSTRAP_TOKEN: ADMIN },
      stdio: ['ignore', 'ignore', 'ignore'],
    });
    this.addr = await waitFor(() => existsSync(addrFile) && readFileSync(addrFile, 'utf8').trim(), { what: 'the server address' });
    this.url = `http://${this.addr}`;
    await waitFor(async () => (await fetch(`${this.url}/readyz`)).ok, { what: 'readyz' });
    return this;
  }

  async api(method, path, body, key = ADMIN) {
    const r = await fetch(this.url + path, {
      method,
      headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text}`);
    return text ? JSON.parse(text) : null;
  }

  stop() {
    if (this.proc && this.proc.exitCode === null) {
      this.proc.kill('SIGTERM');
    }
  }

  async stopAndClean() {
    if (this.proc && this.proc.exitCode === null) {
      const exited = new Promise((r) => this.proc.once('exit', r));
      this.proc.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 15000))]);
      if (this.proc.exitCode === null) this.proc.kill('SIGKILL');
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

// A git repository with a run.sh the local agents run.
export function makeRepo(dir) {
  execFileSync('git', ['init', '-q', '-b', 'main', dir]);
  writeFileSync(join(dir, 'run.sh'), '#!/bin/sh\necho "hello from $(hostname) run"\n');
  chmodSync(join(dir, 'run.sh'), 0o755);
  const git = (...a) => execFileSync('git', ['-C', dir, '-c', 'user.name=t', '-c', 'user.email=t@example.com', ...a]);
  git('add', '.');
  git('commit', '-q', '-m', 'run');
  return `file://${dir}`;
}

export function chromiumPath() {
  for (const p of [process.env.CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser']) {
    if (p && existsSync(p)) return p;
  }
  throw new Error('Debian chromium is not installed (make test-deps installs it)');
}

export function tempDir(prefix) {
  return mkdtempSync(join(tmpdir(), prefix));
}
