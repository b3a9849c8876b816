#pragma once
// Helpers for client subcommands: calling the API, reporting errors, printing tables, JSON and
// YAML.
#include <CLI/CLI.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "client/client.h"
#include "cmd/commands.h"

namespace drover::cmd {

// Calls the API (with ?tenant= when --tenant is given). On a transport error or a non-2xx answer
// prints the problem to stderr and returns nullopt; otherwise the parsed JSON body (null for an
// empty body). `raw`, when given, receives the response (headers included). Without an API key
// it prints how to give one and exits with the usage-error code before sending anything.
std::optional<boost::json::value> Call(const ClientFlags& flags, std::string_view method,
                                       std::string_view target, std::string_view body = {},
                                       client::Response* raw = nullptr);

// Every request needs a key: without one, prints how to give it and exits with the usage-error
// code before anything is sent.
void RequireToken(const ClientFlags& flags);

// `target` with ?tenant= (or &tenant=) when --tenant is given.
std::string WithTenant(const ClientFlags& flags, std::string_view target);

// GETs `target` (with ?tenant= like Call) and returns the response whatever its status,
// printing nothing: for a command that looks before it acts.
Result<client::Response> Peek(const ClientFlags& flags, const std::string& target);

// GETs `target` (which already has a query) page after page, following next_cursor, and
// returns every item; nullopt after printing the problem.
std::optional<boost::json::array> FetchAll(const ClientFlags& flags, const std::string& target);

// Fetches every item of the list at `target` (FetchAll) and prints it: the items with -o json or
// -o yaml, else a table of `header` and one row per item from `row`. Returns the exit code.
int PrintList(const ClientFlags& flags, const std::string& target,
              const std::vector<std::string>& header,
              const std::function<std::vector<std::string>(const boost::json::value&)>& row);

// --since/--until: an RFC 3339 time, or a duration meaning that long ago ("1h", "7d"), as
// RFC 3339; nullopt when it is neither.
std::optional<std::string> TimeArg(const std::string& v);

// The "&since=...&until=..." part of a query for a command's --since/--until values (each as
// TimeArg reads it; empty ones left out); nullopt with `*error` naming the flag when one is
// neither a time nor a duration.
std::optional<std::string> TimeRangeQuery(const std::string& since, const std::string& until,
                                          std::string* error);

// Prints rows under a header, columns padded to their widest cell.
void PrintTable(const std::vector<std::string>& header,
                const std::vector<std::vector<std::string>>& rows);

// Prints `v` as indented JSON.
void PrintJson(const boost::json::value& v);

// Prints `v` as -o asks for data: indented JSON, or YAML (strings that would read as another
// type are quoted, so the YAML reads back as the same data).
void PrintData(const ClientFlags& flags, const boost::json::value& v);

// --wait, a flag with an optional duration: `--wait` (5 minutes) or `--wait=5m`.
CLI::Option* AddWaitFlag(CLI::App* cmd, std::string* value, const std::string& help);
// What --wait asks for: nullopt when it was not given. A value that is not a duration is a
// usage error (printed; `*rc` set to the usage-error code) and also gives nullopt.
std::optional<std::chrono::milliseconds> WaitLimit(const CLI::App* cmd, const CLI::Option* flag,
                                                   const std::string& value, int* rc);

// What a delete prints: "deleted KIND NAME", or with -o json/yaml the same as data. Returns 0.
int Deleted(const ClientFlags& flags, std::string_view kind, const std::string& name);

// Prints the login URL of an `open` answer ({url, expires_at}; url relative to the server) made
// absolute, with how long it lasts, or as data with -o json/yaml. Returns 0.
int PrintLoginUrl(const ClientFlags& flags, const boost::json::value& opened);

// A field of an object as display text ("" for null/absent; numbers and bools as text).
std::string Text(const boost::json::value& obj, std::string_view field);

// Percent-encodes a query parameter value.
std::string UrlEncode(std::string_view s);

}  // namespace drover::cmd
