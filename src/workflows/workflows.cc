#include "workflows/workflows.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>

#include "events/change_log.h"

namespace drover::workflows {
namespace {

Status NoWorkflow(std::string_view name) {
  return Status::NotFound(fmt::format("workflow '{}' does not exist", name));
}

constexpr std::string_view kColumns =
    "SELECT tenant, name, version, spec, created_at, updated_at, modify_index FROM workflows";

Workflow ReadWorkflow(const store::Row& r) {
  Workflow w;
  w.tenant = r.String(0);
  w.name = r.String(1);
  w.version = r.Int(2);
  w.spec_json = r.String(3);
  w.created_at_ms = r.Int(4);
  w.updated_at_ms = r.Int(5);
  w.modify_index = r.Int(6);
  return w;
}

std::string CacheKey(std::string_view tenant, std::string_view name, int64_t version) {
  return fmt::format("{}\n{}\n{}", tenant, name, version);
}

}  // namespace

// The store topic every workflow definition change notifies.
constexpr std::string_view kWorkflowsTopic = "workflows";

WorkflowService::WorkflowService(store::Store& store) : store_(store) {
  subscription_ = store_.Subscribe([this](const store::Change& c) {
    if (c.resync ||
        std::find(c.topics.begin(), c.topics.end(), kWorkflowsTopic) != c.topics.end()) {
      ForgetVersions();
    }
  });
}

WorkflowService::~WorkflowService() { store_.Unsubscribe(subscription_); }

void WorkflowService::ForgetVersions() {
  std::lock_guard lock(mu_);
  current_.clear();
}

void WorkflowService::Put(std::string tenant, std::string name, std::string spec_json,
                          std::function<void(Result<std::pair<Workflow, Written>>)> done) {
  // The topics that trigger it (the spec was checked by the caller).
  std::vector<std::string> triggers;
  std::error_code ec;
  auto doc = boost::json::parse(spec_json, ec);
  if (auto spec = ec ? Result<WorkflowSpec>(Status::InvalidArgument("the spec is not JSON"))
                     : ParseWorkflowDocument(doc, name);
      spec.ok()) {
    triggers = std::move(spec->trigger_topics);
  } else {
    return done(spec.status());
  }
  auto out = std::make_shared<std::pair<Workflow, Written>>();
  out->first.tenant = std::move(tenant);
  out->first.name = std::move(name);
  out->first.spec_json = std::move(spec_json);
  store_.Write(
      [out, triggers = std::move(triggers)](store::Tx& tx) -> Status {
        Workflow& w = out->first;
        std::optional<Workflow> old;
        DROVER_RETURN_IF_ERROR(tx.Query(std::string(kColumns) + " WHERE tenant = ? AND name = ?",
                                        {w.tenant, w.name},
                                        [&](const store::Row& r) { old = ReadWorkflow(r); }));
        if (old && old->spec_json == w.spec_json) {
          w = *old;
          out->second = Written::kUnchanged;
          return Status::Ok();
        }
        auto idx = tx.NextIndex();
        if (!idx.ok()) return idx.status();
        auto now = tx.NowMillis();
        if (!now.ok()) return now.status();
        // Versions go on from the highest ever stored (a deleted and re-created workflow does
        // not reuse a number its old executions still name).
        auto top = tx.QueryInt(
            "SELECT COALESCE(MAX(version), 0) FROM workflow_versions WHERE tenant = ? AND name = ?",
            {w.tenant, w.name});
        if (!top.ok()) return top.status();
        w.version = *top + 1;
        w.created_at_ms = old ? old->created_at_ms : *now;
        w.updated_at_ms = *now;
        w.modify_index = *idx;
        DROVER_RETURN_IF_ERROR(
            tx.Exec("INSERT INTO workflow_versions (tenant, name, version, spec, created_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    {w.tenant, w.name, w.version, w.spec_json, *now})
                .status());
        if (old) {
          DROVER_RETURN_IF_ERROR(tx.Exec("UPDATE workflows SET version = ?, spec = ?,"
                                         " updated_at = ?, modify_index = ?"
                                         " WHERE tenant = ? AND name = ?",
                                         {w.version, w.spec_json, *now, *idx, w.tenant, w.name})
                                     .status());
        } else {
          DROVER_RETURN_IF_ERROR(
              tx.Exec("INSERT INTO workflows (tenant, name, version, spec, created_at,"
                      " updated_at, modify_index) VALUES (?, ?, ?, ?, ?, ?, ?)",
                      {w.tenant, w.name, w.version, w.spec_json, *now, *now, *idx})
                  .status());
        }
        DROVER_RETURN_IF_ERROR(
            tx.Exec("DELETE FROM workflow_triggers WHERE tenant = ? AND workflow = ?",
                    {w.tenant, w.name})
                .status());
        for (const auto& topic : triggers) {
          DROVER_RETURN_IF_ERROR(tx.Exec("INSERT INTO workflow_triggers (tenant, topic, workflow)"
                                         " VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                                         {w.tenant, topic, w.name})
                                     .status());
        }
        out->second = old ? Written::kUpdated : Written::kCreated;
        DROVER_RETURN_IF_ERROR(tx.Notify(kWorkflowsTopic));
        return events::Record(tx, {w.tenant, "workflow", w.name, old ? "updated" : "created",
                                   fmt::format(R"({{"version":{}}})", w.version)});
      },
      [this, out, done = std::move(done)](Status s) {
        if (!s.ok()) return done(s);
        ForgetVersions();
        done(std::move(*out));
      });
}

Result<Workflow> WorkflowService::Get(const std::string& tenant, const std::string& name,
                                      int64_t version) {
  std::optional<Workflow> w;
  Status s = store_.Read([&](store::Tx& tx) -> Status {
    DROVER_RETURN_IF_ERROR(tx.Query(std::string(kColumns) + " WHERE tenant = ? AND name = ?",
                                    {tenant, name},
                                    [&](const store::Row& r) { w = ReadWorkflow(r); }));
    if (!w) return Status::Ok();
    DROVER_RETURN_IF_ERROR(tx.Query(
        "SELECT version, spec, created_at FROM workflow_versions WHERE tenant = ? AND name = ?"
        " ORDER BY version",
        {tenant, name}, [&](const store::Row& r) {
          w->versions.push_back(r.Int(0));
          if (version != 0 && r.Int(0) == version) {
            w->version = version;
            w->spec_json = r.String(1);
            w->updated_at_ms = r.Int(2);
          }
        }));
    return Status::Ok();
  });
  if (!s.ok()) return s;
  if (!w) return NoWorkflow(name);
  if (version != 0 && w->version != version) {
    return Status::NotFound(fmt::format("workflow '{}' has no version {}", name, version));
  }
  return std::move(*w);
}

Result<Page<Workflow>> WorkflowService::List(const std::string& tenant, const std::string& cursor,
                                             int limit) {
  Page<Workflow> page;
  Status s = store_.Read([&](store::Tx& tx) {
    return tx.Query(std::string(kColumns) + " WHERE tenant = ? AND name > ? ORDER BY name LIMIT ?",
                    {tenant, cursor, int64_t{limit} + 1},
                    [&](const store::Row& r) { page.items.push_back(ReadWorkflow(r)); });
  });
  if (!s.ok()) return s;
  page.Trim(limit, [](const Workflow& w) { return w.name; });
  return page;
}

void WorkflowService::Delete(std::string tenant, std::string name,
                             std::function<void(Status)> done) {
  store_.Write(
      [tenant = std::move(tenant), name = std::move(name)](store::Tx& tx) -> Status {
        auto n = tx.Exec("DELETE FROM workflows WHERE tenant = ? AND name = ?", {tenant, name});
        if (!n.ok()) return n.status();
        if (*n == 0) return NoWorkflow(name);
        DROVER_RETURN_IF_ERROR(
            tx.Exec("DELETE FROM workflow_triggers WHERE tenant = ? AND workflow = ?",
                    {tenant, name})
                .status());
        DROVER_RETURN_IF_ERROR(tx.NextIndex().status());
        DROVER_RETURN_IF_ERROR(tx.Notify(kWorkflowsTopic));
        return events::Record(tx, {tenant, "workflow", name, "deleted", ""});
      },
      [this, done = std::move(done)](Status s) {
        ForgetVersions();
        done(std::move(s));
      });
}

Result<std::shared_ptr<const WorkflowSpec>> WorkflowService::Cached(const std::string& key) {
  std::lock_guard lock(mu_);
  auto it = cache_.find(key);
  if (it == cache_.end()) return Status::NotFound("");
  return it->second;
}

Result<std::shared_ptr<const WorkflowSpec>> WorkflowService::Load(store::Tx& tx,
                                                                  const std::string& tenant,
                                                                  const std::string& name,
                                                                  int64_t version) {
  std::string key = CacheKey(tenant, name, version);
  if (auto c = Cached(key); c.ok()) return c;
  std::optional<std::string> text;
  DROVER_RETURN_IF_ERROR(
      tx.Query("SELECT spec FROM workflow_versions WHERE tenant = ? AND name = ? AND version = ?",
               {tenant, name, version}, [&](const store::Row& r) { text = r.String(0); }));
  if (!text) return Status::NotFound(fmt::format("workflow '{}' has no version {}", name, version));
  std::error_code ec;
  auto doc = boost::json::parse(*text, ec);
  if (ec) return Status::Internal("stored workflow spec does not parse");
  auto spec = ParseWorkflowDocument(doc, name);
  if (!spec.ok()) return spec.status();
  auto shared = std::make_shared<const WorkflowSpec>(std::move(*spec));
  std::lock_guard lock(mu_);
  if (cache_.size() > 4096) cache_.clear();  // bounded; versions reload on demand
  cache_.emplace(key, shared);
  return shared;
}

Result<std::shared_ptr<const WorkflowSpec>> WorkflowService::Spec(const std::string& tenant,
                                                                  const std::string& name,
                                                                  int64_t version) {
  if (auto c = Cached(CacheKey(tenant, name, version)); c.ok()) return c;
  Result<std::shared_ptr<const WorkflowSpec>> out = Status::NotFound("");
  Status s = store_.Read([&](store::Tx& tx) -> Status {
    out = Load(tx, tenant, name, version);
    return Status::Ok();
  });
  if (!s.ok()) return s;
  return out;
}

Result<std::shared_ptr<const WorkflowSpec>> WorkflowService::SpecInTx(store::Tx& tx,
                                                                      const std::string& tenant,
                                                                      const std::string& name,
                                                                      int64_t version) {
  return Load(tx, tenant, name, version);
}

Result<int64_t> WorkflowService::CurrentVersionInTx(store::Tx& tx, const std::string& tenant,
                                                    const std::string& name) {
  std::string key = tenant + "\n" + name;
  {
    std::lock_guard lock(mu_);
    if (auto it = current_.find(key); it != current_.end()) return it->second;
  }
  std::optional<int64_t> v;
  DROVER_RETURN_IF_ERROR(tx.Query("SELECT version FROM workflows WHERE tenant = ? AND name = ?",
                                  {tenant, name}, [&](const store::Row& r) { v = r.Int(0); }));
  if (!v) return NoWorkflow(name);
  std::lock_guard lock(mu_);
  if (current_.size() > 10000) current_.clear();  // bounded
  current_[key] = *v;
  return *v;
}

}  // namespace drover::workflows
