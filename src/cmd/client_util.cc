#include "cmd/client_util.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <boost/json.hpp>
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "cmd/usage.h"
#include "common/clock.h"
#include "common/duration.h"
#include "common/yaml.h"

namespace drover::cmd {

void RequireToken(const ClientFlags& flags) {
  if (!flags.token.empty()) return;
  std::fprintf(stderr,
               "error: no API key: set DROVER_TOKEN or pass --token (a server prints an admin "
               "key on its first start)\n");
  std::exit(kUsageError);
}

std::string WithTenant(const ClientFlags& flags, std::string_view target) {
  std::string out(target);
  if (!flags.tenant.empty()) {
    out += (out.find('?') == std::string::npos ? "?tenant=" : "&tenant=") + UrlEncode(flags.tenant);
  }
  return out;
}

Result<client::Response> Peek(const ClientFlags& flags, const std::string& target) {
  RequireToken(flags);
  client::Client c({flags.addr, flags.token});
  return c.Do("GET", WithTenant(flags, target));
}

std::optional<boost::json::value> Call(const ClientFlags& flags, std::string_view method,
                                       std::string_view target, std::string_view body,
                                       client::Response* raw) {
  RequireToken(flags);
  client::Client c({flags.addr, flags.token});
  auto r = c.Do(method, WithTenant(flags, target), body);
  if (!r.ok()) {
    std::fprintf(stderr, "error: %s\n", r.status().message().c_str());
    return std::nullopt;
  }
  if (raw) *raw = *r;
  if (!r->ok()) {
    Status s = client::Client::ToStatus(*r);
    std::fprintf(stderr, "error: %s\n", s.message().c_str());
    for (const auto& e : s.errors()) {
      std::fprintf(stderr, "  %s: %s\n", e.field.c_str(), e.message.c_str());
    }
    return std::nullopt;
  }
  if (r->body.empty()) return boost::json::value(nullptr);
  boost::system::error_code ec;
  auto v = boost::json::parse(r->body, ec);
  if (ec) {
    std::fprintf(stderr, "error: the server sent a body that is not JSON\n");
    return std::nullopt;
  }
  return v;
}

std::optional<boost::json::array> FetchAll(const ClientFlags& flags, const std::string& target) {
  boost::json::array all;
  std::string cursor;
  do {
    auto v = Call(flags, "GET", target + (cursor.empty() ? "" : "&cursor=" + UrlEncode(cursor)));
    if (!v) return std::nullopt;
    for (auto& item : v->as_object()["items"].as_array()) all.push_back(item);
    cursor = Text(*v, "next_cursor");
  } while (!cursor.empty());
  return all;
}

void PrintTable(const std::vector<std::string>& header,
                const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width(header.size());
  for (size_t i = 0; i < header.size(); ++i) width[i] = header[i].size();
  for (const auto& r : rows) {
    for (size_t i = 0; i < r.size() && i < width.size(); ++i)
      width[i] = std::max(width[i], r[i].size());
  }
  auto line = [&](const std::vector<std::string>& cells) {
    std::string out;
    for (size_t i = 0; i < cells.size(); ++i) {
      out += cells[i];
      if (i + 1 < cells.size()) out += std::string(width[i] - cells[i].size() + 2, ' ');
    }
    std::cout << out << "\n";
  };
  line(header);
  for (const auto& r : rows) line(r);
}

namespace {
void Pretty(std::ostream& os, const boost::json::value& v, int indent) {
  std::string pad(static_cast<size_t>(indent) * 2, ' ');
  if (v.is_object()) {
    const auto& o = v.as_object();
    if (o.empty()) {
      os << "{}";
      return;
    }
    os << "{\n";
    size_t i = 0;
    for (const auto& kv : o) {
      os << pad << "  " << boost::json::serialize(boost::json::value(kv.key())) << ": ";
      Pretty(os, kv.value(), indent + 1);
      os << (++i < o.size() ? ",\n" : "\n");
    }
    os << pad << "}";
  } else if (v.is_array()) {
    const auto& a = v.as_array();
    if (a.empty()) {
      os << "[]";
      return;
    }
    os << "[\n";
    for (size_t i = 0; i < a.size(); ++i) {
      os << pad << "  ";
      Pretty(os, a[i], indent + 1);
      os << (i + 1 < a.size() ? ",\n" : "\n");
    }
    os << pad << "]";
  } else {
    os << boost::json::serialize(v);
  }
}
}  // namespace

void PrintJson(const boost::json::value& v) {
  Pretty(std::cout, v, 0);
  std::cout << "\n";
}

namespace {

void EmitYaml(YAML::Emitter& out, const boost::json::value& v) {
  if (v.is_object()) {
    out << YAML::BeginMap;
    for (const auto& kv : v.as_object()) {
      out << YAML::Key;
      EmitYaml(out, boost::json::value(kv.key()));
      out << YAML::Value;
      EmitYaml(out, kv.value());
    }
    out << YAML::EndMap;
  } else if (v.is_array()) {
    out << YAML::BeginSeq;
    for (const auto& item : v.as_array()) EmitYaml(out, item);
    out << YAML::EndSeq;
  } else if (v.is_string()) {
    std::string s(v.as_string());
    // A string that drover's YAML reader would take for a null, bool or number is quoted.
    auto typed = ParseYaml("v: " + s);
    bool plain = !s.empty() && typed.ok() && typed->is_object() &&
                 typed->as_object().contains("v") && typed->as_object().at("v").is_string() &&
                 typed->as_object().at("v").as_string() == s;
    if (!plain) out << YAML::DoubleQuoted;
    out << s;
  } else if (v.is_null()) {
    out << YAML::Null;
  } else {
    out << boost::json::serialize(v);  // numbers and booleans as JSON writes them
  }
}

}  // namespace

void PrintData(const ClientFlags& flags, const boost::json::value& v) {
  if (flags.output != "yaml") return PrintJson(v);
  YAML::Emitter out;
  out.SetIndent(2);
  EmitYaml(out, v);
  std::cout << out.c_str() << "\n";
}

std::string Text(const boost::json::value& obj, std::string_view field) {
  if (!obj.is_object()) return "";
  const auto* v = obj.as_object().if_contains(field);
  if (!v || v->is_null()) return "";
  if (v->is_string()) return std::string(v->as_string());
  if (v->is_double()) return fmt::format("{}", v->as_double());  // 0.537, not 5.37E-1
  return boost::json::serialize(*v);
}

std::string UrlEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

int PrintList(const ClientFlags& flags, const std::string& target,
              const std::vector<std::string>& header,
              const std::function<std::vector<std::string>(const boost::json::value&)>& row) {
  auto all = FetchAll(flags, target);
  if (!all) return 1;
  if (flags.structured()) {
    PrintData(flags, *all);
    return 0;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& item : *all) rows.push_back(row(item));
  PrintTable(header, rows);
  return 0;
}

CLI::Option* AddWaitFlag(CLI::App* cmd, std::string* value, const std::string& help) {
  return cmd->add_option("--wait", *value, help + " (--wait: up to 5m; --wait=DURATION)")
      ->expected(0, 1);
}

std::optional<std::chrono::milliseconds> WaitLimit(const CLI::App* cmd, const CLI::Option* flag,
                                                   const std::string& value, int* rc) {
  *rc = 0;
  if (!flag || flag->count() == 0) return std::nullopt;
  if (value.empty()) return std::chrono::minutes(5);
  auto d = ParseDuration(value);
  if (!d || d->count() == 0) {
    *rc = UsageError(
        cmd, "--wait takes a duration like 90s or 5m, written --wait=5m; got '" + value + "'");
    return std::nullopt;
  }
  return *d;
}

int Deleted(const ClientFlags& flags, std::string_view kind, const std::string& name) {
  if (flags.structured()) {
    PrintData(flags, boost::json::object{{"kind", kind}, {"name", name}, {"result", "deleted"}});
  } else {
    std::cout << "deleted " << kind << " " << name << "\n";
  }
  return 0;
}

int PrintLoginUrl(const ClientFlags& flags, const boost::json::value& opened) {
  std::string url = flags.addr;
  while (url.ends_with('/')) url.pop_back();
  url += Text(opened, "url");
  if (flags.structured()) {
    PrintData(flags, boost::json::object{{"url", url}, {"expires_at", opened.at("expires_at")}});
    return 0;
  }
  std::cout << url << "\n";
  std::cerr << "(open it within a minute; it works once, then the browser keeps a session for"
               " 12 hours)\n";
  return 0;
}

std::optional<std::string> TimeArg(const std::string& v) {
  if (ParseRfc3339(v)) return v;
  if (auto d = ParseDuration(v)) return FormatRfc3339(SystemClock::Get().Now() - *d);
  return std::nullopt;
}

std::optional<std::string> TimeRangeQuery(const std::string& since, const std::string& until,
                                          std::string* error) {
  std::string query;
  for (auto [flag, value] : {std::pair{"since", &since}, std::pair{"until", &until}}) {
    if (value->empty()) continue;
    auto t = TimeArg(*value);
    if (!t) {
      *error = fmt::format(
          "--{} must be an RFC 3339 time or a duration like 10m (that long ago); got '{}'", flag,
          *value);
      return std::nullopt;
    }
    query += fmt::format("&{}={}", flag, UrlEncode(*t));
  }
  return query;
}

}  // namespace drover::cmd
