#pragma once
// How the CLI talks about its own usage: help and usage lines that name the whole command
// ("drover env scale ..."), an unknown command named as such with a suggestion, and every usage
// error on stderr with exit code 2.
#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace drover::cmd {

// Exit code of every usage error (a bad flag, a missing argument, an unknown command).
inline constexpr int kUsageError = 2;

// CLI11's formatter, with usage lines that carry the program and command names.
class FullNameFormatter : public CLI::Formatter {
 public:
  std::string make_usage(const CLI::App* app, std::string name) const override;
};

// "drover env scale": the names from the top to `app`.
std::string CommandPath(const CLI::App* app);

// Checks the command words in `args` (argv as given): 0 when each names a command, else prints
// "unknown command 'x'" with the closest command names and returns kUsageError.
int CheckCommandNames(CLI::App& app, const std::vector<std::string>& args);

// Reports a failed parse: help and --version as CLI11 prints them (exit 0); anything else as
// "error: ...", the usage line of the command being parsed and where to find more (kUsageError).
int ReportUsageError(CLI::App& app, const CLI::ParseError& e);

// For a command's own checks of its arguments (after parsing, before anything changes): prints
// "error: <message>" and the usage of `cmd`; returns kUsageError.
int UsageError(const CLI::App* cmd, const std::string& message);

}  // namespace drover::cmd
