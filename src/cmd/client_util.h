#pragma once
// Helpers for client subcommands: calling the API, reporting errors, printing tables.
#include <boost/json/value.hpp>
#include <functional>
#include <string>
#include <vector>

#include "client/client.h"
#include "cmd/commands.h"

namespace drover::cmd {

// Calls the API. On a transport error or a non-2xx answer prints the problem to stderr and
// returns nullopt; otherwise the parsed JSON body (null for an empty body).
std::optional<boost::json::value> Call(const ClientFlags& flags, std::string_view method,
                                       std::string_view target, std::string_view body = {});

// GETs `target` (which already has a query) page after page, following next_cursor, and
// returns every item; nullopt after printing the problem.
std::optional<boost::json::array> FetchAll(const ClientFlags& flags, const std::string& target);

// Fetches every item of the list at `target` (FetchAll) and prints it: JSON with -o json, else a
// table of `header` and one row per item from `row`. Returns the exit code.
int PrintList(const ClientFlags& flags, const std::string& target,
              const std::vector<std::string>& header,
              const std::function<std::vector<std::string>(const boost::json::value&)>& row);

// Prints rows under a header, columns padded to their widest cell.
void PrintTable(const std::vector<std::string>& header,
                const std::vector<std::vector<std::string>>& rows);

// Prints `v` as indented JSON.
void PrintJson(const boost::json::value& v);

// A field of an object as display text ("" for null/absent; numbers and bools as text).
std::string Text(const boost::json::value& obj, std::string_view field);

// Percent-encodes a query parameter value.
std::string UrlEncode(std::string_view s);

}  // namespace drover::cmd
