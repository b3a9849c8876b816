#pragma once
// GET /ui/...: the dashboard (docs/dashboard.md). Files with a content hash in their name are
// cached for good; the page itself is revalidated by ETag; gzip when the browser takes it; a
// strict Content-Security-Policy (the page loads nothing but its own files and calls nothing
// but this server). Paths without a file name extension are the page's own routes and get
// the page. The page calls the public API with the key its user gives it.
#include "http/router.h"

namespace drover::ui {

void AddUiRoutes(http::Router& router);

}  // namespace drover::ui
