// The dashboard: a login with an API key, a navigation bar, and a page per resource, live from
// the change feed.
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { get, session, setUnauthorizedHandler, signOut } from './api.js';
import { html, ErrorBox } from './components.js';
import { startLive, stopLive, useLiveState } from './live.js';
import { navigate, onLinkClick, usePath } from './router.js';
import { Overview } from './pages/overview.js';
import { Environment, Environments, Instance } from './pages/environments.js';
import { Queue, Queues } from './pages/queues.js';
import { Execution, Executions, Workflows } from './pages/workflows.js';
import { Alert, Alerts, Audit, Keys, Routes, Schedule, Schedules, Variables } from './pages/settings.js';
import './app.css';

const nav = [
  ['/', 'Overview'], ['/environments', 'Environments'], ['/executions', 'Executions'],
  ['/workflows', 'Workflows'], ['/queues', 'Queues'], ['/variables', 'Variables'],
  ['/schedules', 'Schedules'], ['/routes', 'Routes'], ['/alerts', 'Alerts'], ['/audit', 'Audit'],
  ['/keys', 'Keys'],
];

// The page for a path: [component, props].
function route(path) {
  const p = path.split('/').filter(Boolean).map(decodeURIComponent);
  switch (p[0]) {
    case undefined: return [Overview, {}];
    case 'environments':
      if (p[2] === 'instances' && p[3]) return [Instance, { env: p[1], id: p[3] }];
      return p[1] ? [Environment, { name: p[1] }] : [Environments, {}];
    case 'queues': return p[1] ? [Queue, { name: p[1] }] : [Queues, {}];
    case 'workflows': return [Workflows, {}];
    case 'executions': return p[1] ? [Execution, { id: p[1] }] : [Executions, {}];
    case 'variables': return [Variables, {}];
    case 'schedules': return p[1] ? [Schedule, { name: p[1] }] : [Schedules, {}];
    case 'routes': return [Routes, {}];
    case 'alerts': return p[1] ? [Alert, { name: p[1] }] : [Alerts, {}];
    case 'audit': return [Audit, {}];
    case 'keys': return [Keys, {}];
    default: return [NotFound, {}];
  }
}

function NotFound() {
  return html`<section class="page"><h1>Not found</h1><p><a href="/ui/">Overview</a></p></section>`;
}

function Login({ onLogin }) {
  const [key, setKey] = useState('');
  const [error, setError] = useState(null);
  const submit = async (e) => {
    e.preventDefault();
    setError(null);
    session.set(key.trim());
    try {
      onLogin(await get('/v1/status'));
    } catch (err) {
      session.clear();
      setError(err.status === 401 ? { message: 'That key is not valid.' } : err);
    }
  };
  return html`<main class="login">
    <form onSubmit=${submit} aria-labelledby="login-title">
      <h1 id="login-title">drover</h1>
      <p>Sign in with an API key (<code>drover key create</code>). It is kept in this tab only.
        Or run <code>drover ui</code> for a login link.</p>
      <label for="key">API key</label>
      <input id="key" type="password" autocomplete="off" value=${key} onInput=${(e) => setKey(e.target.value)} required autofocus />
      <${ErrorBox} error=${error} />
      <button type="submit" class="primary">Sign in</button>
    </form>
  </main>`;
}

function LiveDot() {
  const s = useLiveState();
  return html`<span class=${`live ${s}`} role="status" aria-live="polite">${s === 'live' ? 'Live' : s === 'reconnecting' ? 'Reconnecting…' : 'Connecting…'}</span>`;
}

function App() {
  const [status, setStatus] = useState(null);
  const [checking, setChecking] = useState(true);
  const full = usePath();
  const path = full.split('?')[0];
  useEffect(() => {
    setUnauthorizedHandler(() => {
      session.clear();
      stopLive();
      setStatus(null);
    });
    // A key of this tab, or a dashboard session's cookie (drover ui), asked about first so that
    // a browser without one sees no 401.
    (async () => {
      if (session.key() || (await get('/v1/ui/session')).active) setStatus(await get('/v1/status'));
    })().catch(() => session.clear()).finally(() => setChecking(false));
  }, []);
  useEffect(() => {
    if (status) startLive();
    return () => stopLive();
  }, [status && status.caller && status.caller.id]);
  if (checking) return html`<p class="muted center">Loading…</p>`;
  if (!status) return html`<${Login} onLogin=${setStatus} />`;
  const c = status.caller || {};
  const caller = { ...c, canWrite: c.role === 'admin' || c.role === 'user' };
  const [Page, props] = route(path);
  const logout = async () => {
    stopLive();
    await signOut();
    setStatus(null);
    navigate('/');
  };
  const query = new URLSearchParams(location.search);
  return html`<div class="shell" onClick=${onLinkClick}>
    <a class="skip" href="#main">Skip to content</a>
    <header class="top">
      <a class="brand" href="/ui/">drover</a>
      <nav aria-label="Main"><ul>${nav.map(([href, label]) => {
        const current = href === '/' ? path === '/' : path.startsWith(href);
        return html`<li><a href=${`/ui${href === '/' ? '/' : href}`} aria-current=${current ? 'page' : undefined}>${label}</a></li>`;
      })}</ul></nav>
      <div class="who"><${LiveDot} /> <span title=${`tenant ${c.tenant}`}>${c.name} · ${c.role}</span>
        <button onClick=${logout}>Sign out</button></div>
    </header>
    <main id="main" tabindex="-1"><${Page} key=${full} ...${props} caller=${caller} query=${query} /></main>
  </div>`;
}

render(html`<${App} />`, document.getElementById('app'));
