#include "schedule/schedules.h"

#include <fmt/format.h>

#include <boost/json.hpp>

#include "common/clock.h"
#include "common/json.h"
#include "events/change_log.h"

namespace drover::schedule {
namespace {

constexpr std::string_view kColumns =
    "SELECT tenant, name, spec, create_index, modify_index, created_at, updated_at FROM schedules";

Schedule ReadSchedule(const store::Row& r) {
  Schedule s;
  s.tenant = r.String(0);
  s.name = r.String(1);
  s.spec_json = r.String(2);
  s.create_index = r.Int(3);
  s.modify_index = r.Int(4);
  s.created_at_ms = r.Int(5);
  s.updated_at_ms = r.Int(6);
  // Stored specs were validated when written (a time zone removed from the tz database since
  // would fall back to UTC here: the spec keeps its name).
  boost::system::error_code ec;
  auto doc = boost::json::parse(s.spec_json, ec);
  if (!ec) {
    if (auto spec = ParseScheduleDocument(doc, s.name); spec.ok()) s.spec = std::move(*spec);
  }
  return s;
}

constexpr std::string_view kFiringColumns =
    "SELECT tenant, name, due, fired_at, kind, status, result, server FROM schedule_firings";

Firing ReadFiring(const store::Row& r) {
  return Firing{r.String(0), r.String(1), r.Int(2),    r.Int(3),
                r.String(4), r.String(5), r.String(6), r.String(7)};
}

store::Param WindowEnv(const Schedule& s) {
  if (!s.spec.window) return store::Param(nullptr);
  return store::Param(std::string_view(s.spec.window->environment));
}

// Records `f` unless its (schedule, due) is recorded already: whether it was recorded now.
Result<bool> InsertFiring(store::Tx& tx, const Firing& f) {
  auto n = tx.Exec(
      "INSERT INTO schedule_firings (tenant, name, due, fired_at, kind, status, result, server)"
      " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (tenant, name, due) DO NOTHING",
      {f.tenant, f.name, f.due_ms, f.fired_at_ms, f.kind, f.status, f.result, f.server});
  if (!n.ok()) return n.status();
  return *n == 1;
}

Status NoSchedule(const std::string& name) {
  return Status::NotFound(fmt::format("no schedule '{}'", name));
}

}  // namespace

void ScheduleService::Put(std::string tenant, std::string name, ScheduleSpec spec,
                          std::function<void(Result<std::pair<Schedule, Written>>)> done) {
  auto out = std::make_shared<std::pair<Schedule, Written>>();
  out->first.tenant = std::move(tenant);
  out->first.name = std::move(name);
  out->first.spec_json = SpecToJson(spec);
  out->first.spec = std::move(spec);
  int64_t now = NowMillis();
  store_.Write(
      [out, now](store::Tx& tx) -> Status {
        auto& s = out->first;
        std::optional<Schedule> old;
        DROVER_RETURN_IF_ERROR(tx.Query(std::string(kColumns) + " WHERE tenant = ? AND name = ?",
                                        {s.tenant, s.name},
                                        [&](const store::Row& r) { old = ReadSchedule(r); }));
        if (old && old->spec_json == s.spec_json) {
          out->second = Written::kUnchanged;  // nothing to write, nobody to wake
          s = std::move(*old);
          return Status::Ok();
        }
        out->second = old ? Written::kUpdated : Written::kCreated;
        auto idx = tx.NextIndex();
        if (!idx.ok()) return idx.status();
        s.modify_index = *idx;
        s.updated_at_ms = now;
        if (old) {
          s.create_index = old->create_index;
          s.created_at_ms = old->created_at_ms;
          DROVER_RETURN_IF_ERROR(
              tx.Exec("UPDATE schedules SET spec = ?, window_env = ?, modify_index = ?,"
                      " updated_at = ? WHERE tenant = ? AND name = ?",
                      {s.spec_json, WindowEnv(s), *idx, now, s.tenant, s.name})
                  .status());
        } else {
          s.create_index = *idx;
          s.created_at_ms = now;
          DROVER_RETURN_IF_ERROR(
              tx.Exec("INSERT INTO schedules (tenant, name, spec, window_env, create_index,"
                      " modify_index, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                      {s.tenant, s.name, s.spec_json, WindowEnv(s), *idx, *idx, now, now})
                  .status());
        }
        DROVER_RETURN_IF_ERROR(
            events::Record(tx, {s.tenant, "schedule", s.name, old ? "updated" : "created", ""}));
        return tx.Notify(kTopic);
      },
      [out, done = std::move(done)](Status st) {
        if (!st.ok()) return done(st);
        done(std::move(*out));
      });
}

Result<Schedule> ScheduleService::Get(const std::string& tenant, const std::string& name) {
  std::optional<Schedule> found;
  Status s = store_.Read([&](store::Tx& tx) {
    return tx.Query(std::string(kColumns) + " WHERE tenant = ? AND name = ?", {tenant, name},
                    [&](const store::Row& r) { found = ReadSchedule(r); });
  });
  if (!s.ok()) return s;
  if (!found) return NoSchedule(name);
  return std::move(*found);
}

Result<Page<Schedule>> ScheduleService::List(const std::string& tenant, const std::string& cursor,
                                             int limit) {
  Page<Schedule> page;
  Status s = store_.Read([&](store::Tx& tx) {
    return tx.Query(std::string(kColumns) + " WHERE tenant = ? AND name > ? ORDER BY name LIMIT ?",
                    {tenant, cursor, int64_t{limit + 1}},
                    [&](const store::Row& r) { page.items.push_back(ReadSchedule(r)); });
  });
  if (!s.ok()) return s;
  page.Trim(limit, [](const auto& last) { return last.name; });
  return page;
}

void ScheduleService::Delete(std::string tenant, std::string name,
                             std::function<void(Status)> done) {
  store_.Write(
      [tenant, name](store::Tx& tx) -> Status {
        auto n = tx.Exec("DELETE FROM schedules WHERE tenant = ? AND name = ?", {tenant, name});
        if (!n.ok()) return n.status();
        if (*n == 0) return NoSchedule(name);
        DROVER_RETURN_IF_ERROR(
            tx.Exec("DELETE FROM schedule_firings WHERE tenant = ? AND name = ?", {tenant, name})
                .status());
        DROVER_RETURN_IF_ERROR(events::Record(tx, {tenant, "schedule", name, "deleted", ""}));
        return tx.Notify(kTopic);
      },
      std::move(done));
}

Result<Page<Firing>> ScheduleService::Firings(const std::string& tenant, const std::string& name,
                                              const std::string& cursor, int limit) {
  int64_t before = INT64_MAX;
  if (!cursor.empty()) {
    try {
      before = std::stoll(cursor);
    } catch (const std::exception&) {
      return Status::InvalidArgument("cursor: not one this server gave out");
    }
  }
  Page<Firing> page;
  Status s = store_.Read([&](store::Tx& tx) {
    return tx.Query(std::string(kFiringColumns) +
                        " WHERE tenant = ? AND name = ? AND due < ? ORDER BY due DESC LIMIT ?",
                    {tenant, name, before, int64_t{limit + 1}},
                    [&](const store::Row& r) { page.items.push_back(ReadFiring(r)); });
  });
  if (!s.ok()) return s;
  page.Trim(limit, [](const auto& last) { return std::to_string(last.due_ms); });
  return page;
}

Result<std::vector<Schedule>> ScheduleService::All() {
  std::vector<Schedule> out;
  Status s = store_.Read([&](store::Tx& tx) {
    return tx.Query(std::string(kColumns) + " ORDER BY tenant, name", {},
                    [&](const store::Row& r) { out.push_back(ReadSchedule(r)); });
  });
  if (!s.ok()) return s;
  return out;
}

Result<std::vector<Schedule>> ScheduleService::Windows() {
  std::vector<Schedule> out;
  Status s = store_.Read([&](store::Tx& tx) {
    return tx.Query(std::string(kColumns) + " WHERE window_env IS NOT NULL", {},
                    [&](const store::Row& r) { out.push_back(ReadSchedule(r)); });
  });
  if (!s.ok()) return s;
  return out;
}

Result<std::vector<ScheduleService::Version>> ScheduleService::Versions() {
  std::vector<Version> out;
  Status s = store_.Read([&](store::Tx& tx) {
    return tx.Query("SELECT tenant, name, modify_index FROM schedules", {},
                    [&](const store::Row& r) {
                      out.push_back({r.String(0), r.String(1), r.Int(2)});
                    });
  });
  if (!s.ok()) return s;
  return out;
}

Result<std::optional<int64_t>> ScheduleService::LastDue(const std::string& tenant,
                                                        const std::string& name) {
  std::optional<int64_t> due;
  Status s = store_.Read([&](store::Tx& tx) {
    return tx.Query(
        "SELECT MAX(due) FROM schedule_firings WHERE tenant = ? AND name = ? AND kind <> 'manual'",
        {tenant, name}, [&](const store::Row& r) {
          if (!r.IsNull(0)) due = r.Int(0);
        });
  });
  if (!s.ok()) return s;
  return due;
}

Result<std::map<std::pair<std::string, std::string>, int64_t>> ScheduleService::LastDues() {
  std::map<std::pair<std::string, std::string>, int64_t> out;
  Status s = store_.Read([&](store::Tx& tx) {
    return tx.Query(
        "SELECT tenant, name, MAX(due) FROM schedule_firings WHERE kind <> 'manual'"
        " GROUP BY tenant, name",
        {}, [&](const store::Row& r) {
          out[{r.String(0), r.String(1)}] = r.Int(2);
        });
  });
  if (!s.ok()) return s;
  return out;
}

Result<std::vector<Firing>> ScheduleService::Record(std::vector<Firing> firings,
                                                    const store::Lease* lease) {
  std::vector<Firing> recorded;
  int64_t now = NowMillis();
  Status s = store::WriteSync(store_, [&](store::Tx& tx) -> Status {
    recorded.clear();
    if (lease) DROVER_RETURN_IF_ERROR(store::Leases::Fence(tx, *lease));
    for (auto& f : firings) {
      f.fired_at_ms = now;
      f.status = "pending";
      auto inserted = InsertFiring(tx, f);
      if (!inserted.ok()) return inserted.status();
      if (*inserted) recorded.push_back(f);
    }
    return Status::Ok();
  });
  if (!s.ok()) return s;
  return recorded;
}

void ScheduleService::RecordManual(const Schedule& s, std::string server,
                                   std::function<void(Result<Firing>)> done) {
  auto f = std::make_shared<Firing>(
      Firing{s.tenant, s.name, 0, 0, "manual", "pending", "", std::move(server)});
  int64_t now = NowMillis();
  // Firings are keyed by (schedule, due): a manual firing never takes one of the schedule's own
  // fire times, or the scheduled firing of that time would find its key taken and not run.
  auto own = [spec = s.spec, created = FromUnixMillis(s.created_at_ms)](int64_t due) {
    auto next = NextFire(spec, FromUnixMillis(due - 1), created);
    return next && ToUnixMillis(*next) == due;
  };
  store_.Write(
      [f, now, own](store::Tx& tx) -> Status {
        f->fired_at_ms = now;
        for (f->due_ms = now; f->due_ms < now + 1000; ++f->due_ms) {
          if (own(f->due_ms)) continue;
          auto recorded = InsertFiring(tx, *f);
          if (!recorded.ok()) return recorded.status();
          if (*recorded)
            return events::Record(tx, {f->tenant, "schedule", f->name, "triggered", ""});
        }
        return Status::Unavailable("too many triggers of this schedule at once; try again");
      },
      [f, done = std::move(done)](Status st) {
        if (!st.ok()) return done(st);
        done(*f);
      });
}

Result<std::vector<Firing>> ScheduleService::Pending(int64_t before_ms) {
  std::vector<Firing> out;
  Status s = store_.Read([&](store::Tx& tx) {
    return tx.Query(std::string(kFiringColumns) +
                        " WHERE status = 'pending' AND fired_at < ? ORDER BY due LIMIT 1000",
                    {before_ms}, [&](const store::Row& r) { out.push_back(ReadFiring(r)); });
  });
  if (!s.ok()) return s;
  return out;
}

namespace {

Status WriteOutcomes(store::Tx& tx, const std::vector<Firing>& firings) {
  for (const auto& f : firings) {
    DROVER_RETURN_IF_ERROR(tx.Exec("UPDATE schedule_firings SET status = ?, result = ?"
                                   " WHERE tenant = ? AND name = ? AND due = ?",
                                   {f.status, f.result, f.tenant, f.name, f.due_ms})
                               .status());
    if (f.tenant.starts_with('_')) continue;  // the server's own (the cleanup): not a change
    std::string summary = "{\"due\":";
    AppendJsonString(summary, FormatRfc3339(FromUnixMillis(f.due_ms)));
    summary += ",\"kind\":";
    AppendJsonString(summary, f.kind);
    summary += ",\"status\":";
    AppendJsonString(summary, f.status);
    summary += ",\"result\":";
    AppendJsonString(summary, f.result);
    summary += '}';
    DROVER_RETURN_IF_ERROR(events::Record(tx, {f.tenant, "firing", f.name, f.status, summary}));
  }
  return Status::Ok();
}

}  // namespace

void ScheduleService::FinishAsync(std::vector<Firing> firings, std::function<void(Status)> done) {
  auto batch = std::make_shared<std::vector<Firing>>(std::move(firings));
  store_.Write([batch](store::Tx& tx) { return WriteOutcomes(tx, *batch); }, std::move(done));
}

Status ScheduleService::Finish(const std::vector<Firing>& firings) {
  if (firings.empty()) return Status::Ok();
  return store::WriteSync(store_,
                          [&](store::Tx& tx) -> Status { return WriteOutcomes(tx, firings); });
}

Result<int64_t> ScheduleService::PruneFirings(int64_t keep) {
  int64_t removed = 0;
  Status s = store::WriteSync(store_, [&](store::Tx& tx) -> Status {
    auto n = tx.Exec(
        "DELETE FROM schedule_firings WHERE due < (SELECT g.due FROM schedule_firings g"
        " WHERE g.tenant = schedule_firings.tenant AND g.name = schedule_firings.name"
        " ORDER BY g.due DESC LIMIT 1 OFFSET ?)",
        {keep - 1});
    if (!n.ok()) return n.status();
    removed = *n;
    return Status::Ok();
  });
  if (!s.ok()) return s;
  return removed;
}

Result<ScheduleService::Counts> ScheduleService::Count() {
  Counts c;
  Status s = store_.Read([&](store::Tx& tx) {
    auto n = tx.QueryInt("SELECT COUNT(*) FROM schedules");
    if (!n.ok()) return n.status();
    c.schedules = *n;
    DROVER_RETURN_IF_ERROR(
        tx.Query("SELECT status, COUNT(*) FROM schedule_firings WHERE tenant <> '_system'"
                 " GROUP BY status",
                 {}, [&](const store::Row& r) { c.firings_by_status[r.String(0)] = r.Int(1); }));
    return tx.Query(
        "SELECT f.tenant, f.name, f.status FROM schedule_firings f JOIN (SELECT tenant, name,"
        " MAX(due) AS due FROM schedule_firings WHERE status <> 'pending' AND tenant <> '_system'"
        " GROUP BY tenant, name) m ON f.tenant = m.tenant AND f.name = m.name AND f.due = m.due",
        {}, [&](const store::Row& r) {
          c.last_failed[{r.String(0), r.String(1)}] = r.Text(2) == "failed";
        });
  });
  if (!s.ok()) return s;
  return c;
}

}  // namespace drover::schedule
