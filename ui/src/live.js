// One connection to the change feed (/v1/events) for the whole page: pages subscribe to the
// kinds they show and re-read when one changes. Reconnects with Last-Event-ID after a drop, so
// nothing is missed; a `reset` (records pruned while away) re-reads everything.
import { useEffect, useState } from 'preact/hooks';
import { get, readEventStream } from './api.js';

const listeners = new Set();
const statusListeners = new Set();
let state = 'connecting';
let controller = null;
let lastId = '';

function setState(s) {
  state = s;
  for (const fn of statusListeners) fn(s);
}

function dispatch(record) {
  for (const fn of listeners) fn(record);
}

export async function startLive() {
  stopLive();
  const mine = new AbortController();
  controller = mine;
  let delay = 500;
  if (!lastId) {
    try {
      lastId = String((await get('/v1/status')).index);  // from now on, not from the start
    } catch {
      lastId = '';
    }
  }
  while (!mine.signal.aborted) {
    try {
      await readEventStream('/v1/events?heartbeat=15s', {
        lastEventId: lastId,
        signal: mine.signal,
        onOpen: () => {
          setState('live');
          delay = 500;
        },
        onEvent: ({ id, event, data }) => {
          if (id) lastId = id;
          if (event === 'reset') return dispatch({ kind: '*', op: 'reset' });
          if (event === 'error') return;
          try {
            dispatch(JSON.parse(data));
          } catch {
            /* not a record */
          }
        },
      });
    } catch {
      /* dropped: reconnect below */
    }
    if (mine.signal.aborted) break;
    setState('reconnecting');
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 10000);
  }
}

export function stopLive() {
  if (controller) controller.abort();
  controller = null;
  lastId = '';
  setState('connecting');
}

// Calls `fn(record)` for each change of one of `kinds` ('*': every kind) while mounted.
export function useChanges(kinds, fn) {
  useEffect(() => {
    const want = new Set(kinds);
    const l = (rec) => {
      if (rec.kind === '*' || want.has('*') || want.has(rec.kind)) fn(rec);
    };
    listeners.add(l);
    return () => listeners.delete(l);
  }, [kinds.join(','), fn]);
}

export function useLiveState() {
  const [s, setS] = useState(state);
  useEffect(() => {
    statusListeners.add(setS);
    return () => statusListeners.delete(setS);
  }, []);
  return s;
}
