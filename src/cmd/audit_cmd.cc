// `drover audit`
#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <iostream>

#include "cmd/client_util.h"
#include "cmd/usage.h"
#include "common/clock.h"
#include "common/duration.h"

namespace drover::cmd {
namespace {

struct AuditFlags {
  std::string actor, kind, since, until;
  int limit = 50;
};

}  // namespace

void AddAuditCommand(CLI::App& app, ClientFlags& flags, Run& run) {
  static AuditFlags f;
  auto* a = app.add_subcommand(
      "audit", "The API calls made, accepted and refused, newest first (the audit log).");
  a->add_option("--actor", f.actor, "only calls by this key id (or anonymous)");
  a->add_option("--kind", f.kind, "only calls about this kind (environment, variable, key, ...)");
  a->add_option("--since", f.since, "from this time (RFC 3339) or this long ago (1h, 7d)");
  a->add_option("--until", f.until, "up to this time (RFC 3339) or this long ago");
  a->add_option("--limit", f.limit, "at most this many calls (1-1000)")->capture_default_str();
  a->callback([a, &flags, &run] {
    run = [a, &flags] {
      if (f.limit < 1 || f.limit > 1000) return UsageError(a, "--limit must be 1..1000");
      std::string target = "/v1/audit?limit=" + std::to_string(f.limit);
      if (!f.actor.empty()) target += "&actor=" + UrlEncode(f.actor);
      if (!f.kind.empty()) target += "&kind=" + UrlEncode(f.kind);
      std::string error;
      auto range = TimeRangeQuery(f.since, f.until, &error);
      if (!range) return UsageError(a, error);
      target += *range;
      auto v = Call(flags, "GET", target);
      if (!v) return 1;
      const auto& items = v->at("items").as_array();
      if (flags.structured()) {
        PrintData(flags, items);
        return 0;
      }
      std::vector<std::vector<std::string>> rows;
      for (const auto& e : items) {
        std::string result = Text(e, "result");
        if (result == "refused") result += " (" + Text(e, "status") + ")";
        rows.push_back({Text(e, "at"), Text(e.at("actor"), "key"), Text(e.at("actor"), "role"),
                        Text(e, "tenant"), Text(e, "kind"), Text(e, "name"), Text(e, "op"),
                        result});
      }
      PrintTable({"TIME", "ACTOR", "ROLE", "TENANT", "KIND", "NAME", "OP", "RESULT"}, rows);
      if (!v->at("next_cursor").is_null()) {
        std::cout << "(more: raise --limit or narrow with --since/--until)\n";
      }
      return 0;
    };
  });
}

}  // namespace drover::cmd
