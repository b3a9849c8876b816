// `drover logs`
#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <iostream>

#include "cmd/client_util.h"
#include "cmd/usage.h"

namespace drover::cmd {
namespace {

struct LogsFlags {
  std::string environment, instance, since, until, grep, trace;
  bool follow = false;
  int limit = 100;
};

void PrintLine(const ClientFlags& flags, const boost::json::value& l) {
  if (flags.structured()) {
    // One object per line (NDJSON with -o json), so a follow can be piped.
    PrintData(flags, l);
    return;
  }
  std::cout << Text(l, "at") << ' ' << Text(l, "instance") << ' ' << Text(l, "stream") << " | "
            << Text(l, "line") << '\n';
}

}  // namespace

void AddLogsCommand(CLI::App& app, ClientFlags& flags, Run& run) {
  static LogsFlags f;
  auto* cmd = app.add_subcommand(
      "logs", "An environment's log lines (instance output, runs, shipped files); -f follows.");
  cmd->add_option("environment", f.environment, "environment (optional with --trace)");
  cmd->add_flag("-f,--follow", f.follow, "print new lines as they come (Ctrl-C ends)");
  cmd->add_option("--instance", f.instance, "only this instance's lines");
  cmd->add_option("--since", f.since, "from this time (RFC 3339) or this long ago (10m, 2h)");
  cmd->add_option("--until", f.until, "before this time (RFC 3339) or this long ago");
  cmd->add_option("--grep", f.grep,
                  "only lines containing this text; /.../ for a simple regular expression");
  cmd->add_option("--trace", f.trace, "only lines of this trace id (every environment)");
  cmd->add_option("--limit", f.limit, "the last this many lines (1-5000)")->capture_default_str();
  cmd->callback([cmd, &flags, &run] {
    run = [cmd, &flags] {
      if (f.environment.empty() && f.trace.empty()) {
        return UsageError(cmd, "name an environment, or give --trace ID");
      }
      if (f.limit < 1 || f.limit > 5000) return UsageError(cmd, "--limit must be 1..5000");
      std::string query;  // "&a=b..." of every filter
      for (auto [value, param] :
           {std::pair{&f.environment, "environment"}, std::pair{&f.instance, "instance"},
            std::pair{&f.grep, "q"}, std::pair{&f.trace, "trace"}}) {
        if (!value->empty()) query += std::string("&") + param + "=" + UrlEncode(*value);
      }
      std::string error;
      auto range = TimeRangeQuery(f.since, f.until, &error);
      if (!range) return UsageError(cmd, error);
      query += *range;
      auto v = Call(flags, "GET", "/v1/logs?limit=" + std::to_string(f.limit) + query);
      if (!v) return 1;
      if (flags.structured() && !f.follow) {
        PrintData(flags, v->at("items"));
        return 0;
      }
      for (const auto& l : v->at("items").as_array()) PrintLine(flags, l);
      if (!f.follow) return 0;
      // Then long polls: each waits for lines after the last seen.
      std::string next = v->at("next").is_string() ? Text(*v, "next") : "";
      for (;;) {
        std::string poll = "/v1/logs?limit=1000&wait=20s" + query;
        if (!next.empty()) poll += "&after=" + UrlEncode(next);
        auto p = Call(flags, "GET", poll);
        if (!p) return 1;
        for (const auto& l : p->at("items").as_array()) PrintLine(flags, l);
        std::cout.flush();
        if (p->at("next").is_string()) next = Text(*p, "next");
      }
    };
  });
}

}  // namespace drover::cmd
