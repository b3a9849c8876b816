// `drover status`, `drover ui`
#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <iostream>

#include "cmd/client_util.h"

namespace drover::cmd {

void AddStatusCommand(CLI::App& app, ClientFlags& flags, Run& run) {
  auto* s = app.add_subcommand("status", "Show the server's version, store, uptime and index.");
  s->callback([&] {
    run = [&] {
      auto v = Call(flags, "GET", "/v1/status");
      if (!v) return 1;
      if (flags.structured()) {
        PrintData(flags, *v);
        return 0;
      }
      std::cout << "server:   " << flags.addr << "\nversion:  " << Text(*v, "version")
                << "\nstore:    " << Text(*v, "backend") << "\nstarted:  " << Text(*v, "started_at")
                << "\nuptime:   " << Text(*v, "uptime_seconds")
                << "s\nindex:    " << Text(*v, "index") << "\n";
      return 0;
    };
  });
}

void AddUiCommand(CLI::App& app, ClientFlags& flags, Run& run) {
  auto* ui = app.add_subcommand(
      "ui", "Print a login URL for the dashboard: a browser session that acts as this key.");
  ui->callback([&] {
    run = [&] {
      auto v = Call(flags, "POST", "/v1/ui/open");
      if (!v) return 1;
      return PrintLoginUrl(flags, *v);
    };
  });
}

}  // namespace drover::cmd
