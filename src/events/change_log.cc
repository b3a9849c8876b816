#include "events/change_log.h"

#include <algorithm>

#include "common/clock.h"
#include "common/json.h"
#include "common/log.h"
#include "store/origin.h"

namespace drover::events {
namespace {

constexpr std::string_view kColumns =
    "SELECT seq, at, tenant, kind, name, op, actor, role, request_id, status, summary"
    " FROM changes";

Entry ReadEntry(const store::Row& r) {
  Entry e;
  e.seq = r.Int(0);
  e.at_ms = r.Int(1);
  e.tenant = r.String(2);
  e.kind = r.String(3);
  e.name = r.String(4);
  e.op = r.String(5);
  e.actor = r.String(6);
  e.role = r.String(7);
  e.request_id = r.String(8);
  e.status = static_cast<int>(r.Int(9));
  e.summary = r.String(10);
  return e;
}

// ",a,b," for `? LIKE '%,' || kind || ',%'`: kinds are names (no % or _), so no escaping.
std::string KindList(const std::vector<std::string>& kinds) {
  if (kinds.empty()) return "";
  std::string s = ",";
  for (const auto& k : kinds) s += k + ",";
  return s;
}

void Insert(store::Tx& tx, int64_t seq, const std::string& tenant, const std::string& kind,
            const std::string& name, const std::string& op, std::string_view actor,
            std::string_view role, std::string_view request_id, int status,
            const std::string& summary) {
  // `at` 0: the database's clock when the batch's records are inserted (asking for it here
  // would cost PostgreSQL a round trip per write).
  tx.AddChangeRow({seq, 0, tenant, kind, name, op, std::string(actor), std::string(role),
                   std::string(request_id), int64_t{status},
                   summary.empty() ? std::string("{}") : summary});
}

}  // namespace

Status Record(store::Tx& tx, const ChangeRecord& c) {
  // The write's own index when it allocated one (its answer's X-Drover-Index), else a new one.
  Result<int64_t> seq = tx.TakeWriteIndex();
  if (*seq == 0) {
    seq = tx.NextIndex();
    if (!seq.ok()) return seq.status();
    tx.TakeWriteIndex();  // this record's own: not the next record's
  }
  const store::Origin& o = store::CurrentOrigin();
  Insert(tx, *seq, c.tenant, c.kind, c.name, c.op, o.actor.empty() ? "server" : o.actor,
         o.role.empty() ? "system" : o.role, o.request_id, 0, c.summary);
  return tx.Notify(kTopic);
}

std::string EntryJson(const Entry& e) {
  std::string out = "{\"seq\":" + std::to_string(e.seq) + ",\"at\":";
  AppendJsonString(out, FormatRfc3339(FromUnixMillis(e.at_ms)));
  AppendJsonField(out, "tenant", e.tenant);
  AppendJsonField(out, "kind", e.kind);
  AppendJsonField(out, "name", e.name);
  AppendJsonField(out, "op", e.op);
  out += ",\"actor\":{\"key\":";
  AppendJsonString(out, e.actor);
  out += ",\"role\":";
  AppendJsonString(out, e.role);
  out += "}";
  if (!e.request_id.empty()) AppendJsonField(out, "request_id", e.request_id);
  out += e.status == 0 ? ",\"result\":\"accepted\"" : ",\"result\":\"refused\"";
  if (e.status != 0) out += ",\"status\":" + std::to_string(e.status);
  out += ",\"summary\":";
  // Written by drover as a JSON object; anything else (never expected) is sent as a string.
  if (e.summary.size() >= 2 && e.summary.front() == '{' && e.summary.back() == '}') {
    out += e.summary;
  } else {
    AppendJsonString(out, e.summary);
  }
  out += '}';
  return out;
}

ChangeLog::ChangeLog(store::Store& store, double refusals_per_second)
    : store_(store),
      rate_(refusals_per_second),
      tokens_(2 * refusals_per_second),
      refilled_(std::chrono::steady_clock::now()) {}

Result<std::vector<Entry>> ChangeLog::Feed(const FeedQuery& q) {
  std::vector<Entry> out;
  std::string kinds = KindList(q.kinds);
  int64_t all_tenants = q.tenant ? 0 : 1;
  std::string tenant = q.tenant.value_or("");
  Status s = store_.Read([&](store::Tx& tx) {
    return tx.Query(std::string(kColumns) +
                        " WHERE seq > ? AND seq <= ? AND status = 0 AND (? = 1 OR tenant = ?)"
                        " AND (? = '' OR ? LIKE '%,' || kind || ',%') ORDER BY seq LIMIT ?",
                    {q.after, q.upto, all_tenants, tenant, kinds, kinds, int64_t{q.limit}},
                    [&](const store::Row& r) { out.push_back(ReadEntry(r)); });
  });
  if (!s.ok()) return s;
  return out;
}

Result<int64_t> ChangeLog::PrunedThrough() {
  int64_t through = 0;
  Status s = store_.Read([&](store::Tx& tx) {
    return tx.Query("SELECT value FROM counters WHERE name = 'changes_pruned'", {},
                    [&](const store::Row& r) { through = r.Int(0); });
  });
  if (!s.ok()) return s;
  return through;
}

Result<std::vector<Entry>> ChangeLog::Audit(const AuditQuery& q) {
  std::vector<Entry> out;
  int64_t all_tenants = q.tenant ? 0 : 1;
  std::string tenant = q.tenant.value_or("");
  Status s = store_.Read([&](store::Tx& tx) {
    return tx.Query(std::string(kColumns) +
                        " WHERE role <> 'system' AND (? = 0 OR seq < ?) AND (? = 1 OR tenant = ?)"
                        " AND (? = '' OR actor = ?) AND (? = '' OR kind = ?)"
                        " AND at >= ? AND at <= ? ORDER BY seq DESC LIMIT ?",
                    {q.before, q.before, all_tenants, tenant, q.actor, q.actor, q.kind, q.kind,
                     q.since_ms.value_or(0), q.until_ms.value_or(INT64_MAX), int64_t{q.limit}},
                    [&](const store::Row& r) { out.push_back(ReadEntry(r)); });
  });
  if (!s.ok()) return s;
  return out;
}

void ChangeLog::RecordRefusal(Refusal r) {
  {
    std::lock_guard lock(mu_);
    auto now = std::chrono::steady_clock::now();
    tokens_ = std::min(2 * rate_,
                       tokens_ + rate_ * std::chrono::duration<double>(now - refilled_).count());
    refilled_ = now;
    if (tokens_ < 1) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    tokens_ -= 1;
  }
  auto rec = std::make_shared<Refusal>(std::move(r));
  store_.Write(
      [rec](store::Tx& tx) -> Status {
        auto seq = tx.NextIndex();
        if (!seq.ok()) return seq.status();
        Insert(tx, *seq, rec->tenant, rec->kind, rec->name, rec->op, rec->actor, rec->role,
               rec->request_id, rec->status, rec->summary);
        return Status::Ok();
      },
      [](Status s) {
        if (!s.ok()) LogWarn("could not record a refused call in the audit log: {}", s.ToString());
      });
}

Result<int64_t> ChangeLog::Prune(std::chrono::milliseconds retention) {
  auto deleted = std::make_shared<int64_t>(0);
  Status s = store::WriteSync(store_, [retention, deleted](store::Tx& tx) -> Status {
    auto now = tx.NowMillis();
    if (!now.ok()) return now.status();
    int64_t cutoff = *now - retention.count();
    // Records are written in seq order with the database's clock, so the old ones come first
    // by seq: walk from the oldest until one is recent (no index on `at` to keep up on writes).
    int64_t through = 0;
    for (;;) {
      int rows = 0;
      bool recent = false;
      DROVER_RETURN_IF_ERROR(
          tx.Query("SELECT seq, at FROM changes WHERE seq > ? ORDER BY seq LIMIT 1000", {through},
                   [&](const store::Row& r) {
                     ++rows;
                     if (recent) return;
                     if (r.Int(1) < cutoff) {
                       through = r.Int(0);
                     } else {
                       recent = true;
                     }
                   }));
      if (recent || rows < 1000) break;
    }
    if (through == 0) return Status::Ok();
    auto n = tx.Exec("DELETE FROM changes WHERE seq <= ?", {through});
    if (!n.ok()) return n.status();
    *deleted = *n;
    return tx
        .Exec(
            "INSERT INTO counters (name, value) VALUES ('changes_pruned', ?)"
            " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            {through})
        .status();
  });
  if (!s.ok()) return s;
  return *deleted;
}

}  // namespace drover::events
