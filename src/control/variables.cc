#include "control/variables.h"

#include <fmt/format.h>

#include "common/json.h"
#include "common/names.h"
#include "cron/cron.h"
#include "events/change_log.h"

namespace drover::control {
namespace {

constexpr std::string_view kColumns =
    "SELECT key, environment, value, create_index, modify_index, updated_at FROM variables";

Variable ReadVariable(const store::Row& r) {
  return {r.String(0), r.String(1), r.String(2), r.Int(3), r.Int(4), r.Int(5)};
}

// Cursors are "key/environment" (names never hold '/'), hex-encoded to stay opaque.
std::string EncodeCursor(const Variable& v) {
  std::string raw = v.key + "/" + v.environment, out;
  static constexpr char kHex[] = "0123456789abcdef";
  for (unsigned char c : raw) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

bool DecodeCursor(std::string_view c, std::string* key, std::string* env) {
  if (c.size() % 2) return false;
  std::string raw;
  for (size_t i = 0; i < c.size(); i += 2) {
    auto h = [](char x) {
      return x >= '0' && x <= '9' ? x - '0' : x >= 'a' && x <= 'f' ? x - 'a' + 10 : -1;
    };
    int hi = h(c[i]), lo = h(c[i + 1]);
    if (hi < 0 || lo < 0) return false;
    raw += static_cast<char>(hi * 16 + lo);
  }
  auto slash = raw.find('/');
  if (slash == std::string::npos) return false;
  *key = raw.substr(0, slash);
  *env = raw.substr(slash + 1);
  return true;
}

// The change record of a variable: its key and environment, never its value (values may be
// secrets).
Status RecordVariable(store::Tx& tx, const std::string& tenant, const std::string& key,
                      const std::string& environment, std::string_view op) {
  std::string summary;
  if (!environment.empty()) {  // a variable for every environment: no summary
    summary = "{\"environment\":";
    AppendJsonString(summary, environment);
    summary += '}';
  }
  return events::Record(tx, {tenant, "variable", key, std::string(op), summary});
}

Status NotifyWrite(store::Tx& tx, std::string_view key) {
  DROVER_RETURN_IF_ERROR(tx.Notify(kTopic));
  if (key.starts_with(kWatcherPrefix)) return tx.Notify(kWatcherTopic);
  return Status::Ok();
}

}  // namespace

Status VariableService::Validate(std::string_view key, std::string_view environment,
                                 std::string_view value) {
  std::vector<FieldError> errors;
  if (!IsValidName(key)) errors.push_back({"key", std::string(kNameRule)});
  if (!environment.empty() && !IsValidName(environment)) {
    errors.push_back({"environment", std::string(kNameRule)});
  }
  if (value.size() > kMaxValueBytes) {
    errors.push_back({"value", fmt::format("is longer than {} bytes", kMaxValueBytes)});
  } else if (value.find('\0') != std::string_view::npos) {
    // PostgreSQL text cannot hold it; refused on every backend alike.
    errors.push_back({"value", "must not contain the NUL character (\\u0000)"});
  } else if (auto why = CheckValue(key, value)) {
    errors.push_back({"value", fmt::format("{}: {}", key, *why)});
  } else if (key == "cc-w-scheduler" && !IsUnsetValue(value)) {
    if (auto c = cron::Cron::Parse(value); !c.ok()) {
      errors.push_back({"value", "cc-w-scheduler: " + c.status().message()});
    }
  }
  if (!errors.empty()) return Status::Validation(std::move(errors));
  return Status::Ok();
}

void VariableService::Put(std::string tenant, std::string key, std::string environment,
                          std::string value, std::function<void(Result<PutResult>)> done) {
  if (Status s = Validate(key, environment, value); !s.ok()) return done(s);
  // One shared state, so each std::function below holds just a shared_ptr (no allocation).
  struct Op {
    std::string tenant;
    PutResult result;
    std::function<void(Result<PutResult>)> done;
  };
  auto op = std::make_shared<Op>();
  op->tenant = std::move(tenant);
  op->result.variable = {
      std::move(key), std::move(environment), std::move(value), 0, 0, ToUnixMillis(clock_.Now())};
  op->done = std::move(done);
  store_.Write(
      [op](store::Tx& tx) -> Status {
        auto& v = op->result.variable;
        auto idx = tx.NextIndex();
        if (!idx.ok()) return idx.status();
        v.modify_index = *idx;
        DROVER_RETURN_IF_ERROR(NotifyWrite(tx, v.key));
        DROVER_RETURN_IF_ERROR(RecordVariable(tx, op->tenant, v.key, v.environment, "set"));
        // One statement, deferred (PostgreSQL sends a batch's worth in one round trip):
        // insert, or keep create_index and replace the rest; RETURNING says which.
        int64_t index = *idx;
        return tx.Defer(
            "INSERT INTO variables (tenant, environment, key, value, create_index, modify_index,"
            " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (tenant, key, environment) DO UPDATE SET value = excluded.value,"
            " modify_index = excluded.modify_index, updated_at = excluded.updated_at"
            " RETURNING create_index",
            {op->tenant, v.environment, v.key, v.value, index, index, v.updated_at_ms},
            [op, index](const store::Row* r) {
              auto& var = op->result.variable;
              var.create_index = r ? r->Int(0) : index;
              op->result.created = var.create_index == index;
            });
      },
      [op](Status s) {
        if (!s.ok()) return op->done(s);
        op->done(std::move(op->result));
      });
}

Result<Variable> VariableService::Get(const std::string& tenant, const std::string& key,
                                      const std::string& environment) {
  std::optional<Variable> found;
  Status s = store_.Read([&](store::Tx& tx) {
    return tx.Query(
        "SELECT key, environment, value, create_index, modify_index, updated_at FROM variables"
        " WHERE tenant = ? AND key = ? AND environment = ?",
        {tenant, key, environment}, [&](const store::Row& r) { found = ReadVariable(r); });
  });
  if (!s.ok()) return s;
  if (!found) {
    return Status::NotFound(
        environment.empty()
            ? fmt::format("variable '{}' is not set", key)
            : fmt::format("variable '{}' is not set in environment '{}'", key, environment));
  }
  return std::move(*found);
}

Result<VariablePage> VariableService::List(const std::string& tenant, const ListQuery& q) {
  std::string after_key, after_env;
  if (!q.cursor.empty() && !DecodeCursor(q.cursor, &after_key, &after_env)) {
    return Status::InvalidArgument("query parameter 'cursor' is not a cursor this server issued");
  }
  // Prefix match as a key range: [prefix, prefix + U+FFFF) works in both backends' collations
  // for the ASCII names variables use, and uses the index.
  std::string hi = q.prefix + "\x7f";
  VariablePage page;
  std::string sql(kColumns);
  sql += " WHERE tenant = ? AND key >= ? AND key < ?";
  sql += " AND (key > ? OR (key = ? AND environment > ?))";
  if (q.environment) sql += " AND environment = ?";
  sql += " ORDER BY key, environment LIMIT ?";
  bool first_page = q.cursor.empty();
  // On the first page, (key > '' OR ...) must admit everything: use a sentinel below any name.
  std::string k = first_page ? std::string() : after_key;
  std::string e = first_page ? std::string() : after_env;
  Status s = store_.Read([&](store::Tx& tx) {
    auto on_row = [&](const store::Row& r) { page.items.push_back(ReadVariable(r)); };
    int64_t lim = q.limit + 1;
    if (q.environment) {
      return tx.Query(sql, {tenant, q.prefix, hi, k, k, e, *q.environment, lim}, on_row);
    }
    return tx.Query(sql, {tenant, q.prefix, hi, k, k, e, lim}, on_row);
  });
  if (!s.ok()) return s;
  page.Trim(q.limit, [](const auto& last) { return EncodeCursor(last); });
  return page;
}

Result<std::vector<std::pair<std::string, Variable>>> VariableService::AllWithPrefix(
    const std::string& prefix) {
  std::vector<std::pair<std::string, Variable>> out;
  std::string hi = prefix + "\x7f";
  Status s = store_.Read([&](store::Tx& tx) {
    // The key is second in the primary key: a loose index scan over the tenants (one seek
    // each) and a range per tenant, rather than a scan of every variable.
    return tx.Query(
        "WITH RECURSIVE t(tenant) AS (SELECT MIN(tenant) FROM variables UNION ALL"
        " SELECT (SELECT MIN(tenant) FROM variables WHERE tenant > t.tenant) FROM t"
        " WHERE t.tenant IS NOT NULL)"
        " SELECT v.key, v.environment, v.value, v.create_index, v.modify_index, v.updated_at,"
        " v.tenant FROM t JOIN variables v ON v.tenant = t.tenant WHERE v.key >= ? AND v.key < ?",
        {prefix, hi}, [&](const store::Row& r) { out.emplace_back(r.String(6), ReadVariable(r)); });
  });
  if (!s.ok()) return s;
  return out;
}

Result<std::map<std::string, std::string>> VariableService::Effective(
    const std::string& tenant, const std::string& environment, const std::string& prefix,
    const std::map<std::string, std::string>& env_defaults) {
  std::map<std::string, std::string> global, scoped;
  for (auto* scope : {&global, &scoped}) {
    if (scope == &scoped && environment.empty()) break;
    ListQuery q;
    q.prefix = prefix;
    q.environment = scope == &global ? std::string() : environment;
    q.limit = 1000;
    do {
      auto page = List(tenant, q);
      if (!page.ok()) return page.status();
      for (auto& v : page->items) (*scope)[v.key] = std::move(v.value);
      q.cursor = page->next_cursor;
    } while (!q.cursor.empty());
  }
  for (const auto& [k, v] : env_defaults) {
    if (k.starts_with(prefix)) global[k] = v;
  }
  for (auto& [k, v] : scoped) global[k] = std::move(v);
  std::erase_if(global, [](const auto& kv) { return IsUnsetValue(kv.second); });
  return global;
}

void VariableService::Delete(std::string tenant, std::string key, std::string environment,
                             std::function<void(Status)> done) {
  store_.Write(
      [tenant = std::move(tenant), key = std::move(key),
       environment = std::move(environment)](store::Tx& tx) -> Status {
        auto n = tx.Exec("DELETE FROM variables WHERE tenant = ? AND key = ? AND environment = ?",
                         {tenant, key, environment});
        if (!n.ok()) return n.status();
        if (*n == 0) return Status::NotFound(fmt::format("variable '{}' is not set", key));
        DROVER_RETURN_IF_ERROR(NotifyWrite(tx, key));
        return RecordVariable(tx, tenant, key, environment, "deleted");
      },
      std::move(done));
}

}  // namespace drover::control
