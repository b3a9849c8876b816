// Pages live under /ui/ with real paths (the server answers the page for any of them), moved
// between with the History API.
import { useEffect, useState } from 'preact/hooks';

const listeners = new Set();

// The page's path under /ui/ with its query ("/executions?status=failed").
export function currentPath() {
  const p = location.pathname.replace(/^\/ui/, '') || '/';
  return p + location.search;
}

export function navigate(path) {
  history.pushState(null, '', `/ui${path}`);
  for (const fn of listeners) fn(currentPath());
  window.scrollTo(0, 0);
}

export function usePath() {
  const [path, setPath] = useState(currentPath());
  useEffect(() => {
    const pop = () => setPath(currentPath());
    listeners.add(setPath);
    window.addEventListener('popstate', pop);
    return () => {
      listeners.delete(setPath);
      window.removeEventListener('popstate', pop);
    };
  }, []);
  return path;
}

// Links within the page: a plain click navigates without reloading; others (new tab) go on.
export function onLinkClick(e) {
  const a = e.target.closest && e.target.closest('a[href^="/ui/"]');
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey) return;
  e.preventDefault();
  navigate(a.getAttribute('href').replace(/^\/ui/, ''));
}
