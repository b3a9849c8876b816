// drover: one binary, subcommands like nomad/consul. `drover server` runs the control plane;
// every other subcommand is a client of its HTTP API.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>

#include "cmd/commands.h"
#include "cmd/usage.h"
#include "common/log.h"

int main(int argc, char** argv) {
  CLI::App app{"drover: a control plane for fleets of machines and the work that runs on them",
               "drover"};
  app.set_version_flag("--version", DROVER_VERSION);
  app.require_subcommand(1);
  app.fallthrough();
  app.formatter(std::make_shared<drover::cmd::FullNameFormatter>());
  drover::cmd::Run run;
  drover::cmd::ClientFlags flags;
  app.add_option("--addr", flags.addr, "server address (DROVER_ADDR)")
      ->envname("DROVER_ADDR")
      ->capture_default_str();
  app.add_option("--token", flags.token, "API key (DROVER_TOKEN)")->envname("DROVER_TOKEN");
  app.add_option("-o,--output", flags.output, "output format: table, json or yaml")
      ->check(CLI::IsMember({"table", "json", "yaml"}))
      ->capture_default_str();
  app.add_option("--tenant", flags.tenant,
                 "act in this tenant (admin keys; the API's ?tenant=); key create takes it as the "
                 "new key's tenant");
  drover::cmd::AddServerCommand(app, run);
  drover::cmd::AddKeyCommands(app, flags, run);
  drover::cmd::AddVarCommands(app, flags, run);
  drover::cmd::AddStatusCommand(app, flags, run);
  drover::cmd::AddUiCommand(app, flags, run);
  drover::cmd::AddAgentCommand(app, run);
  drover::cmd::AddEnvCommands(app, flags, run);
  drover::cmd::AddScheduleCommands(app, flags, run);
  drover::cmd::AddAuditCommand(app, flags, run);
  drover::cmd::AddQueueCommands(app, flags, run);
  drover::cmd::AddWorkflowCommands(app, flags, run);
  drover::cmd::AddRouteCommands(app, flags, run);
  drover::cmd::AddAlertCommands(app, flags, run);
  drover::cmd::AddLogsCommand(app, flags, run);

  std::vector<std::string> args;
  std::string error;
  if (auto* server = app.get_subcommand("server");
      !drover::cmd::LayerServerConfig(*server, argc, argv, &args, &error)) {
    std::fprintf(stderr, "error: %s\n", error.c_str());
    return 2;
  }
  // A command name nobody knows is named as such, with a suggestion, before CLI11 reports it
  // as something else ("a subcommand is required", "arguments were not expected").
  if (int rc = drover::cmd::CheckCommandNames(app, args); rc != 0) return rc;
  try {
    std::vector<std::string> reversed(args.rbegin(), args.rend() - 1);  // CLI11 wants reverse order
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    return drover::cmd::ReportUsageError(app, e);
  }
  int rc = run ? run() : 0;
  drover::FlushLogs();
  return rc;
}
