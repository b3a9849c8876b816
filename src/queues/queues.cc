#include "queues/queues.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>
#include <mutex>
#include <set>

#include "common/json.h"
#include "common/names.h"
#include "common/random.h"
#include "events/change_log.h"
#include "queues/receipt.h"
#include "runtime/work_queue.h"

namespace drover::queues {
namespace {

constexpr std::string_view kQueueColumns =
    "SELECT tenant, name, fifo, visibility_ms, max_receives, dead_letter, retention_ms, delay_ms,"
    " max_bytes, created_at, updated_at, modify_index FROM queues";

Queue ReadQueue(const store::Row& r) {
  Queue q;
  q.tenant = r.String(0);
  q.name = r.String(1);
  q.settings.fifo = r.Int(2) != 0;
  q.settings.visibility_ms = r.Int(3);
  q.settings.max_receives = r.Int(4);
  q.settings.dead_letter_queue = r.String(5);
  q.settings.retention_ms = r.Int(6);
  q.settings.delay_ms = r.Int(7);
  q.settings.max_message_bytes = r.Int(8);
  q.created_at_ms = r.Int(9);
  q.updated_at_ms = r.Int(10);
  q.modify_index = r.Int(11);
  return q;
}

// `lock` (PostgreSQL only): holds the row until the transaction ends, so another server cannot
// delete the queue half-way through a batch.
Result<std::optional<Queue>> FindQueue(store::Tx& tx, const std::string& tenant,
                                       const std::string& name, bool lock = false) {
  std::optional<Queue> q;
  std::string sql = std::string(kQueueColumns) + " WHERE tenant = ? AND name = ?";
  if (lock) sql += " FOR SHARE";
  DROVER_RETURN_IF_ERROR(
      tx.Query(sql, {tenant, name}, [&](const store::Row& r) { q = ReadQueue(r); }));
  return q;
}

Status NoQueue(std::string_view name) {
  return Status::NotFound(fmt::format("queue '{}' does not exist", name));
}

// Runs `fn` in one read of the store if the queue exists; NotFound when it does not.
Status ReadQueueRows(store::Store& store, const std::string& tenant, const std::string& queue,
                     const std::function<Status(store::Tx&)>& fn) {
  bool found = false;
  Status s = store.Read([&](store::Tx& tx) -> Status {
    auto q = FindQueue(tx, tenant, queue);
    if (!q.ok()) return q.status();
    found = q->has_value();
    return found ? fn(tx) : Status::Ok();
  });
  if (!s.ok()) return s;
  return found ? Status::Ok() : NoQueue(queue);
}

// A message's row is inserted from the queue's own row, so a send needs no read first: no row
// comes back when the queue is missing or refuses the message (kind, size), and WhyRefused then
// says which. FIFO: a message behind others of its group waits (visible_at NULL).
constexpr std::string_view kInsertMessage =
    "INSERT INTO messages (tenant, queue, grp, body, attributes, sent_at, not_before, visible_at,"
    " expires_at, receive_count, receipt, source)"
    " SELECT q.tenant, q.name, CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT), n.t,"
    " n.t + (CASE WHEN ? < 0 THEN q.delay_ms ELSE ? END),"
    " CASE WHEN q.fifo = 1 AND EXISTS (SELECT 1 FROM messages o WHERE o.tenant = q.tenant"
    " AND o.queue = q.name AND o.grp = ? AND o.grp <> '') THEN NULL"
    " ELSE n.t + (CASE WHEN ? < 0 THEN q.delay_ms ELSE ? END) END,"
    " n.t + q.retention_ms, 0, 0, ''"
    " FROM queues q CROSS JOIN (SELECT drover_now_ms() AS t) n"
    " WHERE q.tenant = ? AND q.name = ? AND q.fifo = ? AND q.max_bytes >= ?"
    " RETURNING id";

// Moves message ? into queue ? (a dead-letter queue, or back to its source): a new row at the
// end of the target, its own retention, its receive count reset; `source` says where it was.
constexpr std::string_view kMoveMessage =
    "INSERT INTO messages (tenant, queue, grp, body, attributes, sent_at, not_before, visible_at,"
    " expires_at, receive_count, receipt, source)"
    " SELECT m.tenant, d.name, m.grp, m.body, m.attributes, n.t, n.t,"
    " CASE WHEN d.fifo = 1 AND EXISTS (SELECT 1 FROM messages o WHERE o.tenant = d.tenant"
    " AND o.queue = d.name AND o.grp = m.grp AND o.grp <> '') THEN NULL ELSE n.t END,"
    " n.t + d.retention_ms, 0, 0, CAST(? AS TEXT)"
    " FROM messages m JOIN queues d ON d.tenant = m.tenant AND d.name = ?"
    " CROSS JOIN (SELECT drover_now_ms() AS t) n WHERE m.id = ?";

// The next message of a FIFO group becomes receivable once the one before it is gone.
constexpr std::string_view kPromoteNext =
    "UPDATE messages SET visible_at = CASE WHEN not_before > drover_now_ms() THEN not_before"
    " ELSE drover_now_ms() END WHERE id = (SELECT MIN(id) FROM messages WHERE tenant = ?"
    " AND queue = ? AND grp = ? AND grp <> '') AND visible_at IS NULL";

// Every group of a FIFO queue whose head is gone (expired, purged) gets its next one.
constexpr std::string_view kRepairHeads =
    "UPDATE messages SET visible_at = CASE WHEN not_before > drover_now_ms() THEN not_before"
    " ELSE drover_now_ms() END WHERE visible_at IS NULL AND id IN (SELECT MIN(id) FROM messages"
    " WHERE tenant = ? AND queue = ? AND grp <> '' GROUP BY grp)";

std::string AttributesJson(const std::map<std::string, std::string>& a) {
  if (a.empty()) return {};
  std::string out = "{";
  for (const auto& [k, v] : a) {
    if (out.size() > 1) out += ',';
    AppendJsonString(out, k);
    out += ':';
    AppendJsonString(out, v);
  }
  out += '}';
  return out;
}

std::map<std::string, std::string> ParseAttributes(std::string_view json) {
  std::map<std::string, std::string> out;
  if (json.empty()) return out;
  boost::system::error_code ec;
  auto v = boost::json::parse(json, ec);
  if (ec || !v.is_object()) return out;
  for (const auto& kv : v.as_object()) {
    if (kv.value().is_string()) out[std::string(kv.key())] = std::string(kv.value().as_string());
  }
  return out;
}

int64_t MessageBytes(const OutgoingMessage& m, const std::string& attributes_json) {
  return static_cast<int64_t>(m.body.size() + attributes_json.size());
}

// Whether queue `queue` with settings `s` takes `m`: its kind (a group on FIFO queues only, and
// always there) and its size.
Status CheckAgainst(const QueueSettings& s, const std::string& queue, const OutgoingMessage& m,
                    const std::string& attrs, const std::string& prefix) {
  if (s.fifo && m.group.empty()) {
    return Status::Validation({{prefix + "group", "is required on a FIFO queue"}});
  }
  if (!s.fifo && !m.group.empty()) {
    return Status::Validation({{prefix + "group", "is only for FIFO queues (fifo: true)"}});
  }
  int64_t size = MessageBytes(m, attrs);
  if (size > s.max_message_bytes) {
    return Status::TooLarge(
        fmt::format("{}body: the message is {} bytes; queue '{}' takes at most {}", prefix, size,
                    queue, s.max_message_bytes));
  }
  return Status::Ok();
}

// Why the queue refused a message (its insert returned no row).
Status WhyRefused(store::Tx& tx, const std::string& tenant, const std::string& queue,
                  const OutgoingMessage& m, const std::string& prefix) {
  auto q = FindQueue(tx, tenant, queue);
  if (!q.ok()) return q.status();
  if (!*q) return NoQueue(queue);
  DROVER_RETURN_IF_ERROR(
      CheckAgainst((*q)->settings, queue, m, AttributesJson(m.attributes), prefix));
  return Status::Unavailable("the message was not stored; try again");
}

// The attribute and identifier shapes SQS users know: letters, digits and a few marks.
bool IsToken(std::string_view s, size_t max) {
  if (s.empty() || s.size() > max) return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.' || c == ':';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

// Counts and depths per queue (named, not anonymous: QueueService::Impl holds them).
namespace internal {
struct Counts {
  int64_t sent = 0, received = 0, acked = 0, dead_lettered = 0;
  bool empty() const { return !sent && !received && !acked && !dead_lettered; }
};

struct Depth {
  int64_t visible = 0, in_flight = 0, delayed = 0, oldest_age_ms = 0;
  bool dead_letter = false;  // some queue's dead-letter queue
};

using QueueKey = std::pair<std::string, std::string>;  // tenant, name
}  // namespace internal
using internal::Counts;
using internal::Depth;
using internal::QueueKey;

std::string QueueTopic(std::string_view tenant, std::string_view name) {
  return fmt::format("queue/{}/{}", tenant, name);
}

void ValidateMessage(const OutgoingMessage& m, const std::string& prefix,
                     std::vector<FieldError>& errors) {
  if (m.body.find('\0') != std::string::npos) {
    errors.push_back({prefix + "body", "must not contain the NUL character (\\u0000)"});
  }
  if (static_cast<int64_t>(m.body.size()) > kMaxMessageBytes) {
    errors.push_back({prefix + "body", fmt::format("is longer than {} bytes", kMaxMessageBytes)});
  }
  if (m.attributes.size() > 10) {
    errors.push_back({prefix + "attributes", "at most 10 attributes"});
  }
  for (const auto& [k, v] : m.attributes) {
    if (!IsToken(k, 128)) {
      errors.push_back({prefix + "attributes",
                        fmt::format("'{}': names are 1-128 of [A-Za-z0-9_.:-]", k.substr(0, 140))});
    }
    if (v.size() > 1024 || v.find('\0') != std::string::npos) {
      errors.push_back({prefix + "attributes." + (IsToken(k, 128) ? k : std::string("?")),
                        "values are at most 1024 bytes, without NUL"});
    }
  }
  if (!m.group.empty() && !IsToken(m.group, 128)) {
    errors.push_back({prefix + "group", "must be 1-128 of [A-Za-z0-9_.:-]"});
  }
  if (!m.dedup_id.empty() && !IsToken(m.dedup_id, 128)) {
    errors.push_back({prefix + "dedup_id", "must be 1-128 of [A-Za-z0-9_.:-]"});
  }
  if (m.delay_ms && (*m.delay_ms < 0 || *m.delay_ms > kMaxDelayMs)) {
    errors.push_back({prefix + "delay", "must be between 0s and 7d"});
  }
}

struct QueueService::Impl {
  Impl(store::Store& s, const Clock& c)
      : store(s), clock(c), postgres(s.Backend() == "postgres"), waiters(s) {
    // One statement takes the oldest visible messages and hides them: the subquery picks them
    // (on PostgreSQL locking them and skipping rows another server's receive holds), the
    // update gives each this receive's nonce — except a message past its receive limit, which
    // keeps its old one and is moved to the dead-letter queue next (the caller tells them
    // apart by the nonce: RETURNING cannot name the subquery's columns on SQLite).
    receive_sql =
        "UPDATE messages SET visible_at = CASE WHEN x.ex = 1 THEN messages.visible_at ELSE"
        " drover_now_ms() + ? END, receive_count = messages.receive_count + 1 - x.ex,"
        " receipt = CASE WHEN x.ex = 1 THEN messages.receipt ELSE ? END, first_received_at ="
        " CASE WHEN x.ex = 1 THEN messages.first_received_at ELSE"
        " COALESCE(messages.first_received_at, drover_now_ms()) END"
        " FROM (SELECT id, CASE WHEN ? > 0 AND receive_count >= ? THEN 1 ELSE 0 END AS ex"
        " FROM messages WHERE tenant = ? AND queue = ? AND visible_at <= drover_now_ms()"
        " ORDER BY visible_at, id LIMIT ?";
    if (postgres) receive_sql += " FOR UPDATE SKIP LOCKED";  // other servers' receives
    receive_sql +=
        ") AS x WHERE messages.id = x.id RETURNING messages.id, messages.receipt, messages.grp,"
        " messages.body, messages.attributes, messages.sent_at, messages.receive_count,"
        " messages.first_received_at";
    settings_sub = store.Subscribe([this](const store::Change& c) {
      if (c.resync ||
          std::find(c.topics.begin(), c.topics.end(), kSettingsTopic) != c.topics.end()) {
        InvalidateSettings();
      }
    });
  }

  // Queue settings, cached: a receive needs them, and reading them each time would cost
  // PostgreSQL a round trip per receive. Emptied by every change of any queue's settings, on
  // any server (and by this server's own, before it answers).
  Result<std::optional<QueueSettings>> Settings(store::Tx& tx, const std::string& tenant,
                                                const std::string& queue) {
    uint64_t gen;
    {
      std::lock_guard lock(settings_mu);
      auto it = settings.find({tenant, queue});
      if (it != settings.end()) return std::optional<QueueSettings>(it->second);
      gen = settings_gen;
    }
    auto q = FindQueue(tx, tenant, queue);
    if (!q.ok()) return q.status();
    if (!*q) return std::optional<QueueSettings>();
    std::lock_guard lock(settings_mu);
    // Not when a change came meanwhile: what was read may be older than it.
    if (gen == settings_gen) settings[{tenant, queue}] = (*q)->settings;
    return std::optional<QueueSettings>((*q)->settings);
  }
  void InvalidateSettings() {
    std::lock_guard lock(settings_mu);
    ++settings_gen;
    settings.clear();
  }

  store::Store& store;
  const Clock& clock;
  const bool postgres;
  std::string receive_sql;
  ReceiveWaiters waiters;
  int settings_sub = -1;
  std::mutex settings_mu;
  uint64_t settings_gen = 0;                   // GUARDED_BY(settings_mu)
  std::map<QueueKey, QueueSettings> settings;  // GUARDED_BY(settings_mu)
  std::once_flag stopped;

  std::mutex mu;
  std::map<QueueKey, Counts> unflushed;  // GUARDED_BY(mu)
  std::map<QueueKey, Counts> totals;     // GUARDED_BY(mu): this process's, for /metrics
  std::map<QueueKey, Depth> depths;      // GUARDED_BY(mu)
  std::unique_ptr<runtime::WorkQueue> timers;

  void Count(const std::string& tenant, const std::string& queue, Counts c) {
    if (c.empty()) return;
    std::lock_guard lock(mu);
    for (auto* m : {&unflushed, &totals}) {
      Counts& to = (*m)[{tenant, queue}];
      to.sent += c.sent;
      to.received += c.received;
      to.acked += c.acked;
      to.dead_lettered += c.dead_lettered;
    }
  }

  // FIFO on PostgreSQL: sends and acks of one group on different servers take turns, so a
  // message never lands behind a head another server is deleting.
  Status LockGroup(store::Tx& tx, const std::string& tenant, const std::string& queue,
                   const std::string& group) {
    if (!postgres || group.empty()) return Status::Ok();
    std::string key = tenant + "\n" + queue + "\n" + group;
    return tx.Query("SELECT pg_advisory_xact_lock(hashtextextended(?, 7))", {key},
                    [](const store::Row&) {});
  }

  // Inserts one message; the id, or (null) a refusal. Deferred when the caller needs no answer
  // before its next statement.
  Status Insert(store::Tx& tx, const std::string& tenant, const std::string& queue,
                const OutgoingMessage& m, const std::string& attrs,
                std::function<void(std::optional<int64_t>)> on_id, bool deferred) {
    DROVER_RETURN_IF_ERROR(LockGroup(tx, tenant, queue, m.group));
    int64_t delay = m.delay_ms.value_or(-1);
    int64_t fifo = m.group.empty() ? 0 : 1;
    int64_t size = MessageBytes(m, attrs);
    if (deferred) {
      return tx.Defer(
          kInsertMessage,
          {m.group, m.body, attrs, delay, delay, m.group, delay, delay, tenant, queue, fifo, size},
          [on_id = std::move(on_id)](const store::Row* r) {
            on_id(r ? std::optional<int64_t>(r->Int(0)) : std::nullopt);
          });
    }
    std::optional<int64_t> id;
    DROVER_RETURN_IF_ERROR(tx.Query(
        kInsertMessage,
        {m.group, m.body, attrs, delay, delay, m.group, delay, delay, tenant, queue, fifo, size},
        [&](const store::Row& r) { id = r.Int(0); }));
    on_id(id);
    return Status::Ok();
  }

  // Sends `m` with its dedup_id: a live entry answers with the first message's id. The entry
  // is claimed before the message is inserted, so two servers racing on one id insert once.
  Result<SendResult> SendDeduplicated(store::Tx& tx, const std::string& tenant,
                                      const std::string& queue, const OutgoingMessage& m,
                                      const std::string& prefix) {
    bool claimed = false;
    DROVER_RETURN_IF_ERROR(tx.Query(
        "INSERT INTO queue_dedup (tenant, queue, dedup_id, message_id, expires_at)"
        " VALUES (?, ?, ?, 0, drover_now_ms() + ?) ON CONFLICT (tenant, queue, dedup_id)"
        " DO UPDATE SET message_id = 0, expires_at = excluded.expires_at"
        " WHERE queue_dedup.expires_at <= drover_now_ms() RETURNING message_id",
        {tenant, queue, m.dedup_id, kDedupWindowMs}, [&](const store::Row&) { claimed = true; }));
    if (!claimed) {
      auto first = tx.QueryInt(
          "SELECT message_id FROM queue_dedup WHERE tenant = ? AND queue = ? AND dedup_id = ?",
          {tenant, queue, m.dedup_id});
      if (!first.ok()) return first.status();
      return SendResult{*first, true};
    }
    std::optional<int64_t> id;
    DROVER_RETURN_IF_ERROR(Insert(
        tx, tenant, queue, m, AttributesJson(m.attributes),
        [&](std::optional<int64_t> got) { id = got; }, /*deferred=*/false));
    if (!id) return WhyRefused(tx, tenant, queue, m, prefix);
    DROVER_RETURN_IF_ERROR(tx.Exec("UPDATE queue_dedup SET message_id = ? WHERE tenant = ?"
                                   " AND queue = ? AND dedup_id = ?",
                                   {*id, tenant, queue, m.dedup_id})
                               .status());
    return SendResult{*id, false};
  }

  Status MoveToDeadLetter(store::Tx& tx, const std::string& tenant, const std::string& queue,
                          const std::string& dlq, int64_t id, const std::string& group) {
    // Locks in one order everywhere: message rows, then the source's group, then the target's
    // (acks and redrives too), so two servers never wait on each other.
    DROVER_RETURN_IF_ERROR(LockGroup(tx, tenant, queue, group));
    if (!dlq.empty()) {
      DROVER_RETURN_IF_ERROR(LockGroup(tx, tenant, dlq, group));
      auto moved = tx.Exec(kMoveMessage, {queue, dlq, id});
      if (!moved.ok()) return moved.status();
      if (*moved == 0) return Status::Ok();  // its dead-letter queue is gone: it stays
      DROVER_RETURN_IF_ERROR(tx.Notify(QueueTopic(tenant, dlq)));
    }
    // Without a dead-letter queue the message is dropped (counted as dead-lettered).
    DROVER_RETURN_IF_ERROR(tx.Exec("DELETE FROM messages WHERE id = ?", {id}).status());
    if (!group.empty()) {
      DROVER_RETURN_IF_ERROR(tx.Exec(kPromoteNext, {tenant, queue, group}).status());
    }
    return Status::Ok();
  }
};

QueueService::QueueService(store::Store& store, const Clock& clock)
    : impl_(std::make_unique<Impl>(store, clock)) {
  impl_->timers = std::make_unique<runtime::WorkQueue>(
      runtime::WorkQueueOptions{.name = "queue-counters", .clock = &impl_->clock},
      [this](const std::string& key) {
        if (key == "flush") {
          Status s = FlushCounters();
          if (!s.ok()) return runtime::Outcome::Failed(s);
          return runtime::Outcome::After(std::chrono::seconds(1));
        }
        Status s = RefreshDepths();
        if (!s.ok()) return runtime::Outcome::Failed(s);
        return runtime::Outcome::After(std::chrono::seconds(15));
      });
  impl_->timers->Start();
  impl_->timers->AddAfter("flush", std::chrono::seconds(1));
  impl_->timers->AddAfter("depths", std::chrono::seconds(2));
}

QueueService::~QueueService() { Stop(); }

ReceiveWaiters& QueueService::waiters() { return impl_->waiters; }

void QueueService::Stop() {
  std::call_once(impl_->stopped, [this] {
    impl_->store.Unsubscribe(impl_->settings_sub);
    impl_->waiters.Shutdown();
    impl_->timers->Stop(runtime::WorkQueue::kUntilDone);
    (void)FlushCounters();
  });
}

void QueueService::Put(std::string tenant, std::string name, QueueSettings settings,
                       std::function<void(Result<std::pair<Queue, Written>>)> done) {
  auto out = std::make_shared<std::pair<Queue, Written>>();
  out->first.tenant = std::move(tenant);
  out->first.name = std::move(name);
  out->first.settings = std::move(settings);
  impl_->store.Write(
      [out](store::Tx& tx) -> Status {
        Queue& q = out->first;
        auto old = FindQueue(tx, q.tenant, q.name);
        if (!old.ok()) return old.status();
        if (*old && (*old)->settings.fifo != q.settings.fifo) {
          return Status::Validation(
              {{"fifo", "a queue's kind cannot change: delete it and create it again"}});
        }
        if (*old && (*old)->settings == q.settings) {
          out->second = Written::kUnchanged;
          q = std::move(**old);
          return Status::Ok();
        }
        // The dead-letter chain: each queue exists, has the same kind and leads back nowhere.
        std::string next = q.settings.dead_letter_queue;
        for (int hops = 0; !next.empty(); ++hops) {
          auto d = FindQueue(tx, q.tenant, next);
          if (!d.ok()) return d.status();
          if (!*d) {
            std::string why = hops == 0
                                  ? fmt::format("queue '{}' does not exist", next)
                                  : fmt::format("leads to queue '{}', which does not exist", next);
            return Status::Validation({{"dead_letter_queue", why}});
          }
          if (hops == 0 && (*d)->settings.fifo != q.settings.fifo) {
            return Status::Validation(
                {{"dead_letter_queue", q.settings.fifo
                                           ? "a FIFO queue's dead-letter queue must be FIFO too"
                                           : "a FIFO queue cannot be a standard queue's"}});
          }
          next = (*d)->settings.dead_letter_queue;
          if (next == q.name || hops > 64) {
            return Status::Validation(
                {{"dead_letter_queue", fmt::format("makes a cycle back to '{}'", q.name)}});
          }
        }
        auto idx = tx.NextIndex();
        if (!idx.ok()) return idx.status();
        auto now = tx.NowMillis();
        if (!now.ok()) return now.status();
        q.modify_index = *idx;
        q.updated_at_ms = *now;
        q.created_at_ms = *old ? (*old)->created_at_ms : *now;
        const QueueSettings& s = q.settings;
        out->second = *old ? Written::kUpdated : Written::kCreated;
        DROVER_RETURN_IF_ERROR(
            tx.Exec("INSERT INTO queues (tenant, name, fifo, visibility_ms, max_receives,"
                    " dead_letter, retention_ms, delay_ms, max_bytes, created_at, updated_at,"
                    " modify_index) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (tenant, name) DO UPDATE SET visibility_ms ="
                    " excluded.visibility_ms, max_receives = excluded.max_receives,"
                    " dead_letter = excluded.dead_letter, retention_ms = excluded.retention_ms,"
                    " delay_ms = excluded.delay_ms, max_bytes = excluded.max_bytes,"
                    " updated_at = excluded.updated_at, modify_index = excluded.modify_index",
                    {q.tenant, q.name, int64_t{s.fifo}, s.visibility_ms, s.max_receives,
                     s.dead_letter_queue, s.retention_ms, s.delay_ms, s.max_message_bytes,
                     q.created_at_ms, *now, *idx})
                .status());
        DROVER_RETURN_IF_ERROR(tx.Notify(kSettingsTopic));
        return events::Record(tx, {q.tenant, "queue", q.name, *old ? "updated" : "created", ""});
      },
      [out, impl = impl_.get(), done = std::move(done)](Status s) {
        if (!s.ok()) return done(s);
        impl->InvalidateSettings();  // this server's next receive sees them, whatever the feed
        done(std::move(*out));
      });
}

Status QueueService::RemoveInTx(store::Tx& tx, const std::string& tenant, const std::string& queue,
                                int64_t id, bool dead_letter) {
  const bool postgres = impl_->store.Backend() == "postgres";
  std::optional<std::string> group;
  DROVER_RETURN_IF_ERROR(tx.Query(
      postgres ? "SELECT grp FROM messages WHERE id = ? AND tenant = ? AND queue = ? FOR UPDATE"
               : "SELECT grp FROM messages WHERE id = ? AND tenant = ? AND queue = ?",
      {id, tenant, queue}, [&](const store::Row& r) { group = r.String(0); }));
  if (!group) return Status::Ok();
  std::string dlq;
  if (dead_letter) {
    DROVER_RETURN_IF_ERROR(tx.Query("SELECT dead_letter FROM queues WHERE tenant = ? AND name = ?",
                                    {tenant, queue},
                                    [&](const store::Row& r) { dlq = r.String(0); }));
  }
  return impl_->MoveToDeadLetter(tx, tenant, queue, dlq, id, *group);
}

Result<Queue> QueueService::Get(const std::string& tenant, const std::string& name) {
  std::optional<Queue> q;
  Status s = impl_->store.Read([&](store::Tx& tx) -> Status {
    auto r = FindQueue(tx, tenant, name);
    if (!r.ok()) return r.status();
    q = std::move(*r);
    return Status::Ok();
  });
  if (!s.ok()) return s;
  if (!q) return NoQueue(name);
  return std::move(*q);
}

Result<Page<Queue>> QueueService::List(const std::string& tenant, const std::string& cursor,
                                       int limit) {
  Page<Queue> page;
  Status s = impl_->store.Read([&](store::Tx& tx) {
    return tx.Query(
        std::string(kQueueColumns) + " WHERE tenant = ? AND name > ? ORDER BY name LIMIT ?",
        {tenant, cursor, int64_t{limit} + 1},
        [&](const store::Row& r) { page.items.push_back(ReadQueue(r)); });
  });
  if (!s.ok()) return s;
  page.Trim(limit, [](const Queue& q) { return q.name; });
  return page;
}

void QueueService::Delete(std::string tenant, std::string name, std::function<void(Status)> done) {
  impl_->store.Write(
      [tenant = std::move(tenant), name = std::move(name)](store::Tx& tx) -> Status {
        std::string user;
        DROVER_RETURN_IF_ERROR(
            tx.Query("SELECT name FROM queues WHERE tenant = ? AND dead_letter = ? LIMIT 1",
                     {tenant, name}, [&](const store::Row& r) { user = r.String(0); }));
        if (!user.empty()) {
          return Status::Conflict(fmt::format(
              "queue '{}' is the dead-letter queue of '{}': change that queue first", name, user));
        }
        auto n = tx.Exec("DELETE FROM queues WHERE tenant = ? AND name = ?", {tenant, name});
        if (!n.ok()) return n.status();
        if (*n == 0) return NoQueue(name);
        for (std::string_view sql : {"DELETE FROM messages WHERE tenant = ? AND queue = ?",
                                     "DELETE FROM queue_dedup WHERE tenant = ? AND queue = ?",
                                     "DELETE FROM subscriptions WHERE tenant = ? AND queue = ?"}) {
          DROVER_RETURN_IF_ERROR(tx.Exec(sql, {tenant, name}).status());
        }
        DROVER_RETURN_IF_ERROR(tx.NextIndex().status());
        DROVER_RETURN_IF_ERROR(tx.Notify(kSettingsTopic));
        DROVER_RETURN_IF_ERROR(tx.Notify(QueueTopic(tenant, name)));
        return events::Record(tx, {tenant, "queue", name, "deleted", ""});
      },
      [impl = impl_.get(), done = std::move(done)](Status s) {
        if (s.ok()) impl->InvalidateSettings();
        done(s);
      });
}

Result<Page<PeekedMessage>> QueueService::Peek(const std::string& tenant, const std::string& queue,
                                               int64_t after, int limit) {
  Page<PeekedMessage> page;
  Status s = ReadQueueRows(impl_->store, tenant, queue, [&](store::Tx& tx) -> Status {
    auto now = tx.QueryInt("SELECT drover_now_ms()");
    if (!now.ok()) return now.status();
    return tx.Query(
        "SELECT id, body, attributes, grp, source, visible_at, receive_count, sent_at FROM"
        " messages WHERE tenant = ? AND queue = ? AND id > ? ORDER BY id LIMIT ?",
        {tenant, queue, after, int64_t{limit} + 1}, [&](const store::Row& r) {
          PeekedMessage m;
          m.id = r.Int(0);
          m.body = r.String(1);
          m.attributes = ParseAttributes(r.Text(2));
          m.group = r.String(3);
          m.source = r.String(4);
          int64_t visible_at = r.IsNull(5) ? 0 : r.Int(5);
          m.receive_count = r.Int(6);
          m.state = visible_at <= *now ? "visible" : m.receive_count > 0 ? "in_flight" : "delayed";
          m.sent_at_ms = r.Int(7);
          page.items.push_back(std::move(m));
        });
  });
  if (!s.ok()) return s;
  page.Trim(limit, [](const PeekedMessage& m) { return std::to_string(m.id); });
  return page;
}

Result<QueueStats> QueueService::Stats(const std::string& tenant, const std::string& name) {
  QueueStats st;
  bool found = false;
  std::string dlq;
  Status s = impl_->store.Read([&](store::Tx& tx) -> Status {
    DROVER_RETURN_IF_ERROR(tx.Query(
        "SELECT dead_letter, sent, received, acked, dead_lettered FROM queues WHERE tenant = ?"
        " AND name = ?",
        {tenant, name}, [&](const store::Row& r) {
          found = true;
          dlq = r.String(0);
          st.sent = r.Int(1);
          st.received = r.Int(2);
          st.acked = r.Int(3);
          st.dead_lettered = r.Int(4);
        }));
    if (!found) return Status::Ok();
    // The time once, as a parameter: a clock function in the statement may be evaluated per
    // row, and rows would then be judged against different instants.
    auto now = tx.QueryInt("SELECT drover_now_ms()");
    if (!now.ok()) return now.status();
    DROVER_RETURN_IF_ERROR(tx.Query(
        "SELECT COALESCE(SUM(CASE WHEN visible_at IS NULL OR visible_at <= ? THEN 1 ELSE 0 END),"
        " 0), COALESCE(SUM(CASE WHEN visible_at > ? AND receive_count > 0 THEN 1 ELSE 0 END), 0),"
        " COALESCE(SUM(CASE WHEN visible_at > ? AND receive_count = 0 THEN 1 ELSE 0 END), 0),"
        " COALESCE(MIN(sent_at), 0) FROM messages WHERE tenant = ? AND queue = ?",
        {*now, *now, *now, tenant, name}, [&](const store::Row& r) {
          st.visible = r.Int(0);
          st.in_flight = r.Int(1);
          st.delayed = r.Int(2);
          st.oldest_age_ms = r.Int(3) ? std::max<int64_t>(0, *now - r.Int(3)) : 0;
        }));
    if (!dlq.empty()) {
      auto n = tx.QueryInt("SELECT COUNT(*) FROM messages WHERE tenant = ? AND queue = ?",
                           {tenant, dlq});
      if (!n.ok()) return n.status();
      st.dlq_depth = *n;
    }
    return Status::Ok();
  });
  if (!s.ok()) return s;
  if (!found) return NoQueue(name);
  std::lock_guard lock(impl_->mu);  // this server's counts not yet flushed
  if (auto it = impl_->unflushed.find({tenant, name}); it != impl_->unflushed.end()) {
    st.sent += it->second.sent;
    st.received += it->second.received;
    st.acked += it->second.acked;
    st.dead_lettered += it->second.dead_lettered;
  }
  return st;
}

Result<SendResult> QueueService::SendInTx(store::Tx& tx, const std::string& tenant,
                                          const std::string& queue, const OutgoingMessage& m) {
  Result<SendResult> r = SendResult{};
  if (!m.dedup_id.empty()) {
    r = impl_->SendDeduplicated(tx, tenant, queue, m, "");
  } else {
    std::optional<int64_t> id;
    DROVER_RETURN_IF_ERROR(impl_->Insert(
        tx, tenant, queue, m, AttributesJson(m.attributes),
        [&](std::optional<int64_t> got) { id = got; }, /*deferred=*/false));
    if (!id) return WhyRefused(tx, tenant, queue, m, "");
    r = SendResult{*id, false};
  }
  if (!r.ok()) return r;
  DROVER_RETURN_IF_ERROR(tx.NextIndex().status());
  DROVER_RETURN_IF_ERROR(tx.Notify(QueueTopic(tenant, queue)));
  return r;
}

void QueueService::CountSent(const std::string& tenant, const std::string& queue, int64_t n) {
  Counts c;
  c.sent = n;
  impl_->Count(tenant, queue, c);
}

void QueueService::Send(std::string tenant, std::string queue,
                        std::vector<OutgoingMessage> messages,
                        std::function<void(Result<std::vector<SendResult>>)> done) {
  struct Op {
    std::string tenant, queue;
    std::vector<OutgoingMessage> messages;
    std::vector<std::string> attrs;
    std::vector<std::optional<SendResult>> results;
    std::function<void(Result<std::vector<SendResult>>)> done;
  };
  auto op = std::make_shared<Op>();
  op->tenant = std::move(tenant);
  op->queue = std::move(queue);
  op->messages = std::move(messages);
  for (const auto& m : op->messages) op->attrs.push_back(AttributesJson(m.attributes));
  op->done = std::move(done);
  bool batch = op->messages.size() > 1;
  Impl* impl = impl_.get();
  impl->store.Write(
      [op, impl, batch](store::Tx& tx) -> Status {
        op->results.assign(op->messages.size(), std::nullopt);
        if (batch) {
          // All or nothing: every entry is checked against the queue before any is inserted
          // (the row locked on PostgreSQL, so the queue cannot go half-way through), and then
          // the inserts cannot be refused: they are deferred, one round trip for the batch.
          auto q = FindQueue(tx, op->tenant, op->queue, impl->postgres);
          if (!q.ok()) return q.status();
          if (!*q) return NoQueue(op->queue);
          for (size_t i = 0; i < op->messages.size(); ++i) {
            DROVER_RETURN_IF_ERROR(CheckAgainst((*q)->settings, op->queue, op->messages[i],
                                                op->attrs[i], fmt::format("messages[{}].", i)));
          }
        }
        for (size_t i = 0; i < op->messages.size(); ++i) {
          const OutgoingMessage& m = op->messages[i];
          std::string prefix = batch ? fmt::format("messages[{}].", i) : "";
          if (!m.dedup_id.empty()) {
            auto r = impl->SendDeduplicated(tx, op->tenant, op->queue, m, prefix);
            if (!r.ok()) return r.status();
            op->results[i] = *r;
            continue;
          }
          // Deferred: PostgreSQL sends the inserts with the batch's COMMIT. A single send the
          // queue refuses stores nothing and learns why after the commit.
          DROVER_RETURN_IF_ERROR(impl->Insert(
              tx, op->tenant, op->queue, m, op->attrs[i],
              [op, i](std::optional<int64_t> id) {
                if (id) op->results[i] = SendResult{*id, false};
              },
              /*deferred=*/true));
        }
        DROVER_RETURN_IF_ERROR(tx.NextIndex().status());
        return tx.Notify(QueueTopic(op->tenant, op->queue));
      },
      [op, impl](Status s) {
        if (!s.ok()) return op->done(s);
        std::vector<SendResult> out;
        Counts c;
        for (const auto& r : op->results) {
          if (!r) {
            // A single send the queue refused (nothing was stored): say why.
            impl->store.Write(
                [op](store::Tx& tx) {
                  return WhyRefused(tx, op->tenant, op->queue, op->messages[0], "");
                },
                [op](Status why) { op->done(why); });
            return;
          }
          if (!r->duplicate) ++c.sent;
          out.push_back(*r);
        }
        impl->Count(op->tenant, op->queue, c);
        op->done(std::move(out));
      });
}

void QueueService::Receive(std::string tenant, std::string queue, ReceiveOptions options,
                           std::function<void(Result<ReceiveResult>)> done) {
  struct Op {
    std::string tenant, queue;
    ReceiveOptions options;
    int64_t nonce[2] = {0, 0};  // standard, FIFO
    ReceiveResult result;
    int64_t dead_lettered = 0;
    std::function<void(Result<ReceiveResult>)> done;
  };
  auto op = std::make_shared<Op>();
  op->tenant = std::move(tenant);
  op->queue = std::move(queue);
  op->options = options;
  op->nonce[0] = NewNonce(false);
  op->nonce[1] = NewNonce(true);
  op->done = std::move(done);
  Impl* impl = impl_.get();
  impl->store.Write(
      [op, impl](store::Tx& tx) -> Status {
        op->result = {};
        op->dead_lettered = 0;
        auto q = impl->Settings(tx, op->tenant, op->queue);
        if (!q.ok()) return q.status();
        if (!*q) return NoQueue(op->queue);
        const QueueSettings& s = **q;
        int64_t nonce = op->nonce[s.fifo ? 1 : 0];
        int64_t visibility = op->options.visibility_ms.value_or(s.visibility_ms);
        struct Exhausted {
          int64_t id;
          std::string group;
        };
        std::vector<Exhausted> exhausted;
        DROVER_RETURN_IF_ERROR(tx.Query(impl->receive_sql,
                                        {visibility, nonce, s.max_receives, s.max_receives,
                                         op->tenant, op->queue, int64_t{op->options.max}},
                                        [&](const store::Row& r) {
                                          if (r.Int(1) !=
                                              nonce) {  // past its receive limit: not handed out
                                            exhausted.push_back({r.Int(0), r.String(2)});
                                            return;
                                          }
                                          Message m;
                                          m.id = r.Int(0);
                                          m.group = r.String(2);
                                          m.body = r.String(3);
                                          m.attributes = ParseAttributes(r.Text(4));
                                          m.sent_at_ms = r.Int(5);
                                          m.receive_count = r.Int(6);
                                          m.first_received_at_ms = r.Int(7);
                                          m.receipt = EncodeReceipt(m.id, nonce);
                                          op->result.messages.push_back(std::move(m));
                                        }));
        std::sort(op->result.messages.begin(), op->result.messages.end(),
                  [](const Message& a, const Message& b) { return a.id < b.id; });
        for (const auto& e : exhausted) {
          DROVER_RETURN_IF_ERROR(impl->MoveToDeadLetter(tx, op->tenant, op->queue,
                                                        s.dead_letter_queue, e.id, e.group));
          ++op->dead_lettered;
        }
        if (op->result.messages.empty()) {
          // When the next one becomes visible: a long poll wakes then.
          DROVER_RETURN_IF_ERROR(tx.Query(
              "SELECT visible_at, drover_now_ms() FROM messages WHERE tenant = ? AND queue = ?"
              " AND visible_at > drover_now_ms() ORDER BY visible_at LIMIT 1",
              {op->tenant, op->queue}, [&](const store::Row& r) {
                op->result.next_visible_ms = r.Int(0);
                op->result.now_ms = r.Int(1);
              }));
        }
        if (op->dead_lettered > 0) DROVER_RETURN_IF_ERROR(tx.NextIndex().status());
        return Status::Ok();
      },
      [op, impl](Status s) {
        if (!s.ok()) return op->done(s);
        Counts c;
        c.received = static_cast<int64_t>(op->result.messages.size());
        c.dead_lettered = op->dead_lettered;
        impl->Count(op->tenant, op->queue, c);
        op->done(std::move(op->result));
      });
}

void QueueService::Ack(std::string tenant, std::string queue, std::vector<std::string> receipts,
                       std::function<void(Result<AckResult>)> done) {
  struct Op {
    std::string tenant, queue;
    std::vector<std::string> receipts;
    std::vector<std::pair<int64_t, int64_t>> parsed;  // id, nonce
    std::vector<char> acked;
    std::function<void(Result<AckResult>)> done;
  };
  auto op = std::make_shared<Op>();
  std::vector<FieldError> errors;
  for (size_t i = 0; i < receipts.size(); ++i) {
    auto r = DecodeReceipt(receipts[i]);
    if (!r) {
      errors.push_back({receipts.size() > 1 ? fmt::format("receipts[{}]", i) : "receipt",
                        "is not a receipt this server issued"});
      continue;
    }
    op->parsed.push_back(*r);
  }
  if (!errors.empty()) return done(Status::Validation(std::move(errors)));
  op->tenant = std::move(tenant);
  op->queue = std::move(queue);
  op->receipts = std::move(receipts);
  op->done = std::move(done);
  Impl* impl = impl_.get();
  impl->store.Write(
      [op, impl](store::Tx& tx) -> Status {
        op->acked.assign(op->parsed.size(), 0);
        bool fifo_acked = false;
        for (size_t i = 0; i < op->parsed.size(); ++i) {
          auto [id, nonce] = op->parsed[i];
          constexpr std::string_view kDelete =
              "DELETE FROM messages WHERE id = ? AND tenant = ? AND queue = ? AND receipt = ?"
              " AND visible_at > drover_now_ms() RETURNING grp";
          if (!IsFifoNonce(nonce)) {
            DROVER_RETURN_IF_ERROR(
                tx.Defer(kDelete, {id, op->tenant, op->queue, nonce}, [op, i](const store::Row* r) {
                  if (r) op->acked[i] = 1;
                }));
            continue;
          }
          // FIFO: the group's next message becomes receivable in the same transaction.
          // Row first, then group, as a receive takes them (PostgreSQL: no two servers wait
          // on each other).
          std::optional<std::string> group;
          DROVER_RETURN_IF_ERROR(tx.Query(
              impl->postgres
                  ? "SELECT grp FROM messages WHERE id = ? AND tenant = ? AND queue = ? FOR UPDATE"
                  : "SELECT grp FROM messages WHERE id = ? AND tenant = ? AND queue = ?",
              {id, op->tenant, op->queue}, [&](const store::Row& r) { group = r.String(0); }));
          if (!group) continue;
          DROVER_RETURN_IF_ERROR(impl->LockGroup(tx, op->tenant, op->queue, *group));
          bool deleted = false;
          DROVER_RETURN_IF_ERROR(tx.Query(kDelete, {id, op->tenant, op->queue, nonce},
                                          [&](const store::Row&) { deleted = true; }));
          if (!deleted) continue;
          op->acked[i] = 1;
          fifo_acked = true;
          DROVER_RETURN_IF_ERROR(tx.Exec(kPromoteNext, {op->tenant, op->queue, *group}).status());
        }
        if (fifo_acked) {  // a group's next message is receivable: wake a waiting receiver
          DROVER_RETURN_IF_ERROR(tx.NextIndex().status());
          DROVER_RETURN_IF_ERROR(tx.Notify(QueueTopic(op->tenant, op->queue)));
        }
        return Status::Ok();
      },
      [op, impl](Status s) {
        if (!s.ok()) return op->done(s);
        AckResult out;
        for (size_t i = 0; i < op->acked.size(); ++i) {
          if (op->acked[i]) {
            ++out.acked;
          } else {
            out.stale.push_back(op->receipts[i]);
          }
        }
        Counts c;
        c.acked = out.acked;
        impl->Count(op->tenant, op->queue, c);
        op->done(std::move(out));
      });
}

void QueueService::ChangeVisibility(std::string tenant, std::string queue, std::string receipt,
                                    int64_t timeout_ms, std::function<void(Status)> done) {
  auto r = DecodeReceipt(receipt);
  if (!r) return done(Status::Validation({{"receipt", "is not a receipt this server issued"}}));
  impl_->store.Write(
      [tenant = std::move(tenant), queue = std::move(queue), id = r->first, nonce = r->second,
       timeout_ms](store::Tx& tx) -> Status {
        auto n = tx.Exec(
            "UPDATE messages SET visible_at = drover_now_ms() + ? WHERE id = ? AND tenant = ?"
            " AND queue = ? AND receipt = ? AND visible_at > drover_now_ms()",
            {timeout_ms, id, tenant, queue, nonce});
        if (!n.ok()) return n.status();
        if (*n == 0) {
          return Status::Conflict(
              "the receipt is stale: the message was acked, received again, or its visibility "
              "timeout ended");
        }
        // A waiting receiver looks again: released, it can take it now; a shorter timeout
        // than the one it saw changes when it should look.
        DROVER_RETURN_IF_ERROR(tx.NextIndex().status());
        return tx.Notify(QueueTopic(tenant, queue));
      },
      std::move(done));
}

void QueueService::Redrive(std::string tenant, std::string dlq, int64_t max,
                           std::function<void(Result<int64_t>)> done) {
  struct Op {
    std::string tenant, dlq;
    int64_t max = 0, moved = 0, chunk_moved = 0;
    std::function<void(Result<int64_t>)> done;
    std::function<void()> next;
  };
  auto op = std::make_shared<Op>();
  op->tenant = std::move(tenant);
  op->dlq = std::move(dlq);
  op->max = max;
  op->done = std::move(done);
  Impl* impl = impl_.get();
  // In chunks of 1000, each its own transaction: a large dead-letter queue does not hold the
  // writer for long. Each chunk moves messages whole (insert at the source, delete here).
  op->next = [op, impl] {
    impl->store.Write(
        [op, impl](store::Tx& tx) -> Status {
          op->chunk_moved = 0;
          auto q = FindQueue(tx, op->tenant, op->dlq);
          if (!q.ok()) return q.status();
          if (!*q) return NoQueue(op->dlq);
          int64_t want = 1000;
          if (op->max > 0) want = std::min(want, op->max - op->moved);
          struct Row {
            int64_t id;
            std::string source, group;
          };
          std::vector<Row> rows;
          DROVER_RETURN_IF_ERROR(tx.Query(
              "SELECT m.id, m.source, m.grp FROM messages m JOIN queues s ON s.tenant = m.tenant"
              " AND s.name = m.source WHERE m.tenant = ? AND m.queue = ? ORDER BY m.id LIMIT ?",
              {op->tenant, op->dlq, want}, [&](const store::Row& r) {
                rows.push_back({r.Int(0), r.String(1), r.String(2)});
              }));
          std::set<std::string> sources;
          for (const Row& r : rows) {
            DROVER_RETURN_IF_ERROR(impl->LockGroup(tx, op->tenant, r.source, r.group));
            DROVER_RETURN_IF_ERROR(impl->LockGroup(tx, op->tenant, op->dlq, r.group));
            DROVER_RETURN_IF_ERROR(tx.Exec(kMoveMessage, {std::string(), r.source, r.id}).status());
            DROVER_RETURN_IF_ERROR(tx.Exec("DELETE FROM messages WHERE id = ?", {r.id}).status());
            if (!r.group.empty()) {
              DROVER_RETURN_IF_ERROR(
                  tx.Exec(kPromoteNext, {op->tenant, op->dlq, r.group}).status());
            }
            sources.insert(r.source);
          }
          op->chunk_moved = static_cast<int64_t>(rows.size());
          if (rows.empty()) return Status::Ok();
          DROVER_RETURN_IF_ERROR(tx.NextIndex().status());
          for (const auto& s : sources) {
            DROVER_RETURN_IF_ERROR(tx.Notify(QueueTopic(op->tenant, s)));
          }
          return events::Record(tx, {op->tenant, "queue", op->dlq, "redriven",
                                     fmt::format("{{\"messages\":{}}}", rows.size())});
        },
        [op](Status s) {
          if (!s.ok()) {
            auto done = std::move(op->done);
            op->next = nullptr;  // breaks the cycle op -> next -> op
            return done(s);
          }
          op->moved += op->chunk_moved;
          bool more = op->chunk_moved == 1000 && (op->max == 0 || op->moved < op->max);
          if (more) return op->next();
          auto done = std::move(op->done);
          op->next = nullptr;
          done(op->moved);
        });
  };
  op->next();
}

void QueueService::Purge(std::string tenant, std::string queue,
                         std::function<void(Result<int64_t>)> done) {
  auto purged = std::make_shared<int64_t>(0);
  impl_->store.Write(
      [tenant = std::move(tenant), queue = std::move(queue), purged](store::Tx& tx) -> Status {
        auto q = FindQueue(tx, tenant, queue);
        if (!q.ok()) return q.status();
        if (!*q) return NoQueue(queue);
        auto n = tx.Exec("DELETE FROM messages WHERE tenant = ? AND queue = ?", {tenant, queue});
        if (!n.ok()) return n.status();
        *purged = *n;
        DROVER_RETURN_IF_ERROR(tx.NextIndex().status());
        return events::Record(
            tx, {tenant, "queue", queue, "purged", fmt::format("{{\"messages\":{}}}", *n)});
      },
      [purged, done = std::move(done)](Status s) {
        if (!s.ok()) return done(s);
        done(*purged);
      });
}

Result<std::vector<HistoryPoint>> QueueService::History(const std::string& tenant,
                                                        const std::string& queue,
                                                        int64_t since_ms) {
  std::vector<HistoryPoint> points;
  Status s = ReadQueueRows(impl_->store, tenant, queue, [&](store::Tx& tx) -> Status {
    return tx.Query(
        "SELECT at, depth, sent, received, acked, dead_lettered FROM queue_history WHERE"
        " tenant = ? AND queue = ? AND at >= ? ORDER BY at LIMIT 1500",
        {tenant, queue, since_ms}, [&](const store::Row& r) {
          points.push_back({r.Int(0), r.Int(1), r.Int(2), r.Int(3), r.Int(4), r.Int(5)});
        });
  });
  if (!s.ok()) return s;
  return points;
}

Status QueueService::RecordHistory() {
  return store::WriteSync(impl_->store, [](store::Tx& tx) -> Status {
    auto now = tx.QueryInt("SELECT drover_now_ms()");
    if (!now.ok()) return now.status();
    DROVER_RETURN_IF_ERROR(
        tx.Exec("INSERT INTO queue_history (tenant, queue, at, depth, sent, received, acked,"
                " dead_lettered) SELECT q.tenant, q.name, CAST(? AS BIGINT), (SELECT COUNT(*)"
                " FROM messages m WHERE m.tenant = q.tenant AND m.queue = q.name), q.sent,"
                " q.received, q.acked, q.dead_lettered FROM queues q WHERE 1 = 1"
                " ON CONFLICT DO NOTHING",
                {*now})
            .status());
    // A day, and nothing of queues that are gone.
    DROVER_RETURN_IF_ERROR(
        tx.Exec("DELETE FROM queue_history WHERE at < ?", {*now - 86400000}).status());
    return tx
        .Exec(
            "DELETE FROM queue_history WHERE NOT EXISTS (SELECT 1 FROM queues q WHERE"
            " q.tenant = queue_history.tenant AND q.name = queue_history.queue)")
        .status();
  });
}

Status QueueService::Cleanup() {
  return store::WriteSync(impl_->store, [](store::Tx& tx) -> Status {
    DROVER_RETURN_IF_ERROR(
        tx.Exec("DELETE FROM messages WHERE expires_at <= drover_now_ms()").status());
    DROVER_RETURN_IF_ERROR(
        tx.Exec("DELETE FROM queue_dedup WHERE expires_at <= drover_now_ms()").status());
    // A FIFO group whose head expired gets its next message.
    std::vector<std::pair<std::string, std::string>> fifo;
    DROVER_RETURN_IF_ERROR(
        tx.Query("SELECT tenant, name FROM queues WHERE fifo = 1", {},
                 [&](const store::Row& r) { fifo.emplace_back(r.String(0), r.String(1)); }));
    for (const auto& [tenant, name] : fifo) {
      DROVER_RETURN_IF_ERROR(tx.Exec(kRepairHeads, {tenant, name}).status());
    }
    return Status::Ok();
  });
}

Status QueueService::FlushCounters() {
  std::map<QueueKey, Counts> counts;
  {
    std::lock_guard lock(impl_->mu);
    counts.swap(impl_->unflushed);
  }
  if (counts.empty()) return Status::Ok();
  Status s = store::WriteSync(impl_->store, [&counts](store::Tx& tx) -> Status {
    for (const auto& [k, c] : counts) {
      DROVER_RETURN_IF_ERROR(
          tx.Exec("UPDATE queues SET sent = sent + ?, received = received + ?, acked = acked + ?,"
                  " dead_lettered = dead_lettered + ? WHERE tenant = ? AND name = ?",
                  {c.sent, c.received, c.acked, c.dead_lettered, k.first, k.second})
              .status());
    }
    return Status::Ok();
  });
  if (!s.ok()) {  // kept for the next flush
    std::lock_guard lock(impl_->mu);
    for (const auto& [k, c] : counts) {
      Counts& to = impl_->unflushed[k];
      to.sent += c.sent;
      to.received += c.received;
      to.acked += c.acked;
      to.dead_lettered += c.dead_lettered;
    }
  }
  return s;
}

Status QueueService::RefreshDepths() {
  std::map<QueueKey, Depth> depths;
  Status s = impl_->store.Read([&](store::Tx& tx) -> Status {
    DROVER_RETURN_IF_ERROR(
        tx.Query("SELECT tenant, name FROM queues", {}, [&](const store::Row& r) {
          depths[{r.String(0), r.String(1)}];
        }));
    std::set<QueueKey> dead_letters;
    DROVER_RETURN_IF_ERROR(
        tx.Query("SELECT tenant, dead_letter FROM queues WHERE dead_letter <> ''", {},
                 [&](const store::Row& r) {
                   dead_letters.insert({r.String(0), r.String(1)});
                 }));
    auto now = tx.QueryInt("SELECT drover_now_ms()");
    if (!now.ok()) return now.status();
    DROVER_RETURN_IF_ERROR(tx.Query(
        "SELECT tenant, queue, SUM(CASE WHEN visible_at IS NULL OR visible_at <= ? THEN 1"
        " ELSE 0 END), SUM(CASE WHEN visible_at > ? AND receive_count > 0 THEN 1 ELSE 0 END),"
        " SUM(CASE WHEN visible_at > ? AND receive_count = 0 THEN 1 ELSE 0 END),"
        " MIN(sent_at) FROM messages GROUP BY tenant, queue",
        {*now, *now, *now}, [&](const store::Row& r) {
          auto it = depths.find({r.String(0), r.String(1)});
          if (it == depths.end()) return;
          it->second = {r.Int(2), r.Int(3), r.Int(4), std::max<int64_t>(0, *now - r.Int(5)), false};
        }));
    for (const auto& k : dead_letters) {
      if (auto it = depths.find(k); it != depths.end()) it->second.dead_letter = true;
    }
    return Status::Ok();
  });
  if (!s.ok()) return s;
  std::lock_guard lock(impl_->mu);
  impl_->depths = std::move(depths);
  return Status::Ok();
}

void QueueService::RenderMetrics(std::string& out) {
  std::lock_guard lock(impl_->mu);
  auto labels = [](const QueueKey& k) {
    std::string l = "tenant=";
    AppendJsonString(l, k.first);  // a JSON string is a valid label value for names
    l += ",queue=";
    AppendJsonString(l, k.second);
    return l;
  };
  struct CounterDef {
    const char* name;
    const char* help;
    int64_t Counts::*field;
  };
  static constexpr CounterDef kCounters[] = {
      {"drover_queue_messages_sent_total", "Messages sent to a queue (by this server).",
       &Counts::sent},
      {"drover_queue_messages_received_total", "Messages received (by this server).",
       &Counts::received},
      {"drover_queue_messages_acked_total", "Messages acked (by this server).", &Counts::acked},
      {"drover_queue_messages_dead_lettered_total",
       "Messages moved to a dead-letter queue, or dropped without one (by this server).",
       &Counts::dead_lettered},
  };
  for (const auto& c : kCounters) {
    out += fmt::format("# HELP {} {}\n# TYPE {} counter\n", c.name, c.help, c.name);
    for (const auto& [k, v] : impl_->totals) {
      out += fmt::format("{}{{{}}} {}\n", c.name, labels(k), v.*(c.field));
    }
  }
  out +=
      "# HELP drover_queue_messages Messages in a queue by state (refreshed every 15 s).\n"
      "# TYPE drover_queue_messages gauge\n";
  for (const auto& [k, d] : impl_->depths) {
    std::string l = labels(k);
    out += fmt::format("drover_queue_messages{{{},state=\"visible\"}} {}\n", l, d.visible);
    out += fmt::format("drover_queue_messages{{{},state=\"in_flight\"}} {}\n", l, d.in_flight);
    out += fmt::format("drover_queue_messages{{{},state=\"delayed\"}} {}\n", l, d.delayed);
  }
  out +=
      "# HELP drover_queue_oldest_message_age_seconds Age of a queue's oldest message "
      "(refreshed every 15 s).\n# TYPE drover_queue_oldest_message_age_seconds gauge\n";
  for (const auto& [k, d] : impl_->depths) {
    out += fmt::format("drover_queue_oldest_message_age_seconds{{{}}} {:.3f}\n", labels(k),
                       static_cast<double>(d.oldest_age_ms) / 1000.0);
  }
  out +=
      "# HELP drover_queue_dead_letters Messages in a dead-letter queue (one that another queue "
      "names as its dead_letter; refreshed every 15 s).\n"
      "# TYPE drover_queue_dead_letters gauge\n";
  for (const auto& [k, d] : impl_->depths) {
    if (!d.dead_letter) continue;
    out += fmt::format("drover_queue_dead_letters{{{}}} {}\n", labels(k),
                       d.visible + d.in_flight + d.delayed);
  }
}

}  // namespace drover::queues
