#include "queues/topics.h"

#include <fmt/format.h>

#include <boost/json.hpp>
#include <map>

#include "events/change_log.h"
#include "queues/filter.h"

namespace drover::queues {
namespace {

Status NoTopic(std::string_view name) {
  return Status::NotFound(fmt::format("topic '{}' does not exist", name));
}

Result<std::optional<Topic>> FindTopic(store::Tx& tx, const std::string& tenant,
                                       const std::string& name) {
  std::optional<Topic> t;
  DROVER_RETURN_IF_ERROR(
      tx.Query("SELECT created_at, modify_index FROM topics WHERE tenant = ? AND name = ?",
               {tenant, name}, [&](const store::Row& r) {
                 t = Topic{tenant, name, r.Int(0), r.Int(1), {}};
               }));
  if (!t) return t;
  DROVER_RETURN_IF_ERROR(
      tx.Query("SELECT queue, filter, created_at FROM subscriptions WHERE tenant = ? AND topic = ?"
               " ORDER BY queue",
               {tenant, name}, [&](const store::Row& r) {
                 t->subscriptions.push_back({r.String(0), r.String(1), r.Int(2)});
               }));
  return t;
}

}  // namespace

void TopicService::Put(std::string tenant, std::string name,
                       std::optional<std::vector<Subscription>> subscriptions,
                       std::function<void(Result<std::pair<Topic, Written>>)> done) {
  auto out = std::make_shared<std::pair<Topic, Written>>();
  out->first.tenant = std::move(tenant);
  out->first.name = std::move(name);
  store_.Write(
      [out, subs = std::move(subscriptions)](store::Tx& tx) -> Status {
        Topic& t = out->first;
        auto old = FindTopic(tx, t.tenant, t.name);
        if (!old.ok()) return old.status();
        out->second = *old ? Written::kUnchanged : Written::kCreated;
        auto idx = tx.NextIndex();
        if (!idx.ok()) return idx.status();
        auto now = tx.NowMillis();
        if (!now.ok()) return now.status();
        if (!*old) {
          DROVER_RETURN_IF_ERROR(tx.Exec("INSERT INTO topics (tenant, name, created_at,"
                                         " modify_index) VALUES (?, ?, ?, ?)",
                                         {t.tenant, t.name, *now, *idx})
                                     .status());
        }
        if (subs) {
          std::vector<FieldError> errors;
          for (size_t i = 0; i < subs->size(); ++i) {
            auto n = tx.QueryInt("SELECT COUNT(*) FROM queues WHERE tenant = ? AND name = ?",
                                 {t.tenant, (*subs)[i].queue});
            if (!n.ok()) return n.status();
            if (*n == 0) {
              errors.push_back({fmt::format("spec.subscriptions[{}].queue", i),
                                fmt::format("queue '{}' does not exist", (*subs)[i].queue)});
            }
          }
          if (!errors.empty()) return Status::Validation(std::move(errors));
          std::map<std::string, std::string> want, have;
          for (const auto& s : *subs) want[s.queue] = s.filter_json;
          if (*old) {
            for (const auto& s : (*old)->subscriptions) have[s.queue] = s.filter_json;
          }
          for (const auto& [queue, filter] : have) {
            if (want.contains(queue)) continue;
            DROVER_RETURN_IF_ERROR(
                tx.Exec("DELETE FROM subscriptions WHERE tenant = ? AND topic = ? AND queue = ?",
                        {t.tenant, t.name, queue})
                    .status());
          }
          for (const auto& [queue, filter] : want) {
            auto it = have.find(queue);
            if (it != have.end() && it->second == filter) continue;
            DROVER_RETURN_IF_ERROR(
                tx.Exec("INSERT INTO subscriptions (tenant, topic, queue, filter, created_at)"
                        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (tenant, topic, queue) DO UPDATE"
                        " SET filter = excluded.filter",
                        {t.tenant, t.name, queue, filter, *now})
                    .status());
          }
          if (*old && want != have) out->second = Written::kUpdated;
        }
        if (out->second == Written::kUnchanged) {
          t = std::move(**old);
          return Status::Ok();
        }
        DROVER_RETURN_IF_ERROR(
            tx.Exec("UPDATE topics SET modify_index = ? WHERE tenant = ? AND name = ?",
                    {*idx, t.tenant, t.name})
                .status());
        auto now_topic = FindTopic(tx, t.tenant, t.name);
        if (!now_topic.ok()) return now_topic.status();
        t = std::move(**now_topic);
        DROVER_RETURN_IF_ERROR(tx.Notify(kSettingsTopic));
        return events::Record(tx, {t.tenant, "topic", t.name,
                                   out->second == Written::kCreated ? "created" : "updated", ""});
      },
      [out, done = std::move(done)](Status s) {
        if (!s.ok()) return done(s);
        done(std::move(*out));
      });
}

Result<Topic> TopicService::Get(const std::string& tenant, const std::string& name) {
  std::optional<Topic> t;
  Status s = store_.Read([&](store::Tx& tx) -> Status {
    auto r = FindTopic(tx, tenant, name);
    if (!r.ok()) return r.status();
    t = std::move(*r);
    return Status::Ok();
  });
  if (!s.ok()) return s;
  if (!t) return NoTopic(name);
  return std::move(*t);
}

Result<Page<Topic>> TopicService::List(const std::string& tenant, const std::string& cursor,
                                       int limit) {
  Page<Topic> page;
  Status s = store_.Read([&](store::Tx& tx) -> Status {
    std::vector<std::string> names;
    DROVER_RETURN_IF_ERROR(
        tx.Query("SELECT name FROM topics WHERE tenant = ? AND name > ? ORDER BY name LIMIT ?",
                 {tenant, cursor, int64_t{limit} + 1},
                 [&](const store::Row& r) { names.push_back(r.String(0)); }));
    for (const auto& n : names) {
      auto t = FindTopic(tx, tenant, n);
      if (!t.ok()) return t.status();
      if (*t) page.items.push_back(std::move(**t));
    }
    return Status::Ok();
  });
  if (!s.ok()) return s;
  page.Trim(limit, [](const Topic& t) { return t.name; });
  return page;
}

void TopicService::Delete(std::string tenant, std::string name, std::function<void(Status)> done) {
  store_.Write(
      [tenant = std::move(tenant), name = std::move(name)](store::Tx& tx) -> Status {
        auto n = tx.Exec("DELETE FROM topics WHERE tenant = ? AND name = ?", {tenant, name});
        if (!n.ok()) return n.status();
        if (*n == 0) return NoTopic(name);
        DROVER_RETURN_IF_ERROR(
            tx.Exec("DELETE FROM subscriptions WHERE tenant = ? AND topic = ?", {tenant, name})
                .status());
        DROVER_RETURN_IF_ERROR(tx.NextIndex().status());
        DROVER_RETURN_IF_ERROR(tx.Notify(kSettingsTopic));
        return events::Record(tx, {tenant, "topic", name, "deleted", ""});
      },
      std::move(done));
}

void TopicService::Subscribe(std::string tenant, std::string topic, std::string queue,
                             std::string filter_json, std::function<void(Result<Written>)> done) {
  auto written = std::make_shared<Written>(Written::kCreated);
  store_.Write(
      [tenant = std::move(tenant), topic = std::move(topic), queue = std::move(queue),
       filter = std::move(filter_json), written](store::Tx& tx) -> Status {
        auto t = FindTopic(tx, tenant, topic);
        if (!t.ok()) return t.status();
        if (!*t) return NoTopic(topic);
        auto q = tx.QueryInt("SELECT COUNT(*) FROM queues WHERE tenant = ? AND name = ?",
                             {tenant, queue});
        if (!q.ok()) return q.status();
        if (*q == 0) {
          return Status::Validation({{"queue", fmt::format("queue '{}' does not exist", queue)}});
        }
        for (const auto& s : (*t)->subscriptions) {
          if (s.queue != queue) continue;
          if (s.filter_json == filter) {
            *written = Written::kUnchanged;
            return Status::Ok();
          }
          *written = Written::kUpdated;
        }
        auto now = tx.NowMillis();
        if (!now.ok()) return now.status();
        DROVER_RETURN_IF_ERROR(
            tx.Exec("INSERT INTO subscriptions (tenant, topic, queue, filter, created_at) VALUES"
                    " (?, ?, ?, ?, ?) ON CONFLICT (tenant, topic, queue) DO UPDATE SET filter ="
                    " excluded.filter",
                    {tenant, topic, queue, filter, *now})
                .status());
        DROVER_RETURN_IF_ERROR(tx.NextIndex().status());
        DROVER_RETURN_IF_ERROR(tx.Notify(kSettingsTopic));
        std::string summary = "{\"queue\":\"" + queue + "\"}";  // names need no escaping
        return events::Record(tx, {tenant, "topic", topic, "subscribed", summary});
      },
      [written, done = std::move(done)](Status s) {
        if (!s.ok()) return done(s);
        done(*written);
      });
}

void TopicService::Unsubscribe(std::string tenant, std::string topic, std::string queue,
                               std::function<void(Status)> done) {
  store_.Write(
      [tenant = std::move(tenant), topic = std::move(topic),
       queue = std::move(queue)](store::Tx& tx) -> Status {
        auto n = tx.Exec("DELETE FROM subscriptions WHERE tenant = ? AND topic = ? AND queue = ?",
                         {tenant, topic, queue});
        if (!n.ok()) return n.status();
        if (*n == 0) {
          return Status::NotFound(
              fmt::format("queue '{}' is not subscribed to topic '{}'", queue, topic));
        }
        DROVER_RETURN_IF_ERROR(tx.NextIndex().status());
        DROVER_RETURN_IF_ERROR(tx.Notify(kSettingsTopic));
        std::string summary = "{\"queue\":\"" + queue + "\"}";
        return events::Record(tx, {tenant, "topic", topic, "unsubscribed", summary});
      },
      std::move(done));
}

void TopicService::Publish(std::string tenant, std::string topic,
                           std::vector<OutgoingMessage> messages,
                           std::function<void(Result<std::vector<std::vector<Delivery>>>)> done) {
  struct Op {
    std::string tenant, topic;
    std::vector<OutgoingMessage> messages;
    std::vector<std::vector<Delivery>> out;
  };
  auto op = std::make_shared<Op>();
  op->tenant = std::move(tenant);
  op->topic = std::move(topic);
  op->messages = std::move(messages);
  QueueService* queues = &queues_;
  const PublishHook* hook = &hook_;
  store_.Write(
      [op, queues, hook](store::Tx& tx) -> Status {
        op->out.assign(op->messages.size(), {});
        auto t = FindTopic(tx, op->tenant, op->topic);
        if (!t.ok()) return t.status();
        if (!*t) return NoTopic(op->topic);
        std::vector<std::pair<std::string, FilterPolicy>> subs;
        for (const auto& s : (*t)->subscriptions) {
          FilterPolicy p;
          if (!s.filter_json.empty()) {
            boost::system::error_code ec;
            auto v = boost::json::parse(s.filter_json, ec);
            auto parsed =
                ec ? Result<FilterPolicy>(Status::Internal("bad stored filter")) : ParseFilter(v);
            if (!parsed.ok()) return parsed.status();
            p = std::move(*parsed);
          }
          subs.emplace_back(s.queue, std::move(p));
        }
        for (size_t i = 0; i < op->messages.size(); ++i) {
          for (const auto& [queue, policy] : subs) {
            if (!Matches(policy, op->messages[i].attributes)) continue;
            auto r = queues->SendInTx(tx, op->tenant, queue, op->messages[i]);
            if (!r.ok()) return r.status();  // its message names the queue
            op->out[i].push_back({queue, *r, "", ""});
          }
          if (*hook) {
            auto started = (*hook)(tx, op->tenant, op->topic, op->messages[i]);
            if (!started.ok()) return started.status();
            for (auto& d : *started) op->out[i].push_back(std::move(d));
          }
        }
        return Status::Ok();
      },
      [op, queues, done = std::move(done)](Status s) {
        if (!s.ok()) return done(s);
        for (const auto& per_message : op->out) {
          for (const auto& d : per_message) {
            if (!d.queue.empty() && !d.result.duplicate) queues->CountSent(op->tenant, d.queue, 1);
          }
        }
        done(std::move(op->out));
      });
}

}  // namespace drover::queues
