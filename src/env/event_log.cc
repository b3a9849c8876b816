#include "env/event_log.h"

#include <fmt/format.h>

#include <boost/json/parse.hpp>

#include "common/json.h"
#include "common/random.h"
#include "control/values.h"
#include "env/rows.h"
#include "store/lease.h"

namespace drover::env {

Result<Page<Event>> EventLog::Events(const std::string& tenant, const std::string& env,
                                     const std::string& cursor, int limit) {
  auto after = ParseCursor(cursor);
  if (!after.ok()) return after.status();
  Page<Event> page;
  Status s = store_.Read([&](store::Tx& tx) {
    return tx.Query(
        "SELECT seq, instance, kind, reason, at FROM environment_events"
        " WHERE tenant = ? AND environment = ? AND seq > ? ORDER BY seq, instance, kind LIMIT ?",
        {tenant, env, *after, int64_t{limit + 1}}, [&](const store::Row& r) {
          page.items.push_back({r.Int(0), r.String(1), r.String(2), r.String(3), r.Int(4)});
        });
  });
  if (!s.ok()) return s;
  page.Trim(limit, [](const auto& last) { return std::to_string(last.seq); });
  return page;
}

Status EventLog::RecordEvent(const Environment& env, const std::string& kind,
                             const std::string& reason, const store::Lease* lease) {
  return store::WriteSync(store_, [&](store::Tx& tx) -> Status {
    auto at = ControllerWrite(tx, lease);
    if (!at.ok()) return at.status();
    auto [now, idx] = *at;
    DROVER_RETURN_IF_ERROR(AddEvent(tx, env.tenant, env.name, idx, "", kind, reason, now));
    return tx.Notify(kTopic);
  });
}

}  // namespace drover::env
