#pragma once
// GET /ui/...: the dashboard (docs/dashboard.md). Files with a content hash in their name are
// cached for good; the page itself is revalidated by ETag; gzip when the browser takes it; a
// strict Content-Security-Policy (the page loads nothing but its own files and calls nothing
// but this server). Paths without a file name extension are the page's own routes and get
// the page. The page calls the public API with the key its user gives it, or with a dashboard
// session: POST /v1/ui/open (`drover ui`) gives a single-use login code; GET /ui/?drover_code=
// trades it for an HttpOnly cookie for /v1/ (which the pipeline takes only with the page's
// X-Drover-UI header); DELETE /v1/ui/session ends it.
#include "http/router.h"

namespace drover::gateway {
class SessionService;
}

namespace drover::ui {

// `sessions` null: no dashboard sessions (keys only).
void AddUiRoutes(http::Router& router, gateway::SessionService* sessions);

}  // namespace drover::ui
