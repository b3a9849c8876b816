#pragma once
// Durable queues (docs/queues.md): at-least-once messages with visibility timeouts, receive
// limits and dead-letter queues, delays, deduplication and FIFO groups, on either backend.
// Every send, receive and ack is a store write, group-committed with whatever else is queued:
// `done` runs after the commit (on the store's completion thread). Thread-safe.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/page.h"
#include "common/status.h"
#include "queues/receive_waiters.h"
#include "queues/settings.h"
#include "store/store.h"

namespace drover::queues {

struct Queue {
  std::string tenant, name;
  QueueSettings settings;
  int64_t created_at_ms = 0, updated_at_ms = 0, modify_index = 0;
};

struct QueueStats {
  int64_t visible = 0;    // receivable now (FIFO: including those behind their group's head)
  int64_t in_flight = 0;  // received, not acked, visibility not expired
  int64_t delayed = 0;    // sent with a delay that has not passed
  int64_t oldest_age_ms = 0;
  std::optional<int64_t> dlq_depth;  // messages in its dead-letter queue, when it has one
  // Since the queue was created, every server (each flushes its counts every second).
  int64_t sent = 0, received = 0, acked = 0, dead_lettered = 0;
};

// A message to send, validated by ValidateMessage.
struct OutgoingMessage {
  std::string body;
  std::map<std::string, std::string> attributes;
  std::string group;     // FIFO queues only (required there)
  std::string dedup_id;  // "" none
  std::optional<int64_t> delay_ms;
  std::string source;  // a topic publishing it, for the record (not stored)
};

struct SendResult {
  int64_t id = 0;
  bool duplicate = false;  // dropped by its dedup_id: `id` is the first message's
};

struct Message {
  int64_t id = 0;
  std::string body;
  std::map<std::string, std::string> attributes;
  std::string group;
  std::string receipt;
  int64_t receive_count = 0;
  int64_t sent_at_ms = 0, first_received_at_ms = 0;
};

// A message as a peek shows it: read, not received (nothing about it changes).
struct PeekedMessage {
  int64_t id = 0;
  std::string body;
  std::map<std::string, std::string> attributes;
  std::string group;
  std::string source;  // the queue it was dead-lettered from ("" when sent here)
  std::string state;   // "visible", "in_flight" or "delayed"
  int64_t receive_count = 0;
  int64_t sent_at_ms = 0;
};

// A queue's figures at one time (a minute apart): counters since the queue was made.
struct HistoryPoint {
  int64_t at_ms = 0;
  int64_t depth = 0;  // messages held: visible, in flight and delayed
  int64_t sent = 0, received = 0, acked = 0, dead_lettered = 0;
};

struct ReceiveOptions {
  int max = 1;                           // 1..10
  std::optional<int64_t> visibility_ms;  // default: the queue's
};

struct ReceiveResult {
  std::vector<Message> messages;
  // When the next message becomes visible (a delay or a visibility ending), 0 when none is
  // waiting: a long poll wakes then without polling the database.
  int64_t next_visible_ms = 0;
  int64_t now_ms = 0;
};

struct AckResult {
  int acked = 0;
  std::vector<std::string> stale;  // receipts that no longer name a message held
};

// The store topic a queue's sends and releases notify: long polls wait on it.
std::string QueueTopic(std::string_view tenant, std::string_view name);
// The store topic of every change of a queue's or topic's settings.
inline constexpr std::string_view kSettingsTopic = "queues";

// Longest batch (send and ack), most messages per receive, longest long poll.
inline constexpr int kMaxBatch = 100;
inline constexpr int kMaxReceive = 10;
inline constexpr int64_t kMaxWaitMs = 20'000;
inline constexpr int64_t kDedupWindowMs = 5 * 60'000;

// Field errors of one message, named under `prefix` ("" or "messages[3]."), for the checks that
// need no queue (sizes against the largest a queue may allow, names, group and dedup shapes).
void ValidateMessage(const OutgoingMessage& m, const std::string& prefix,
                     std::vector<FieldError>& errors);

class QueueService {
 public:
  QueueService(store::Store& store, const Clock& clock);
  ~QueueService();  // Stop()

  // Long-polling receivers (the HTTP routes park them here).
  ReceiveWaiters& waiters();
  // Wakes parked receivers, stops the counter and depth timers and writes the counts not yet
  // written. For a stopping server, before the store closes. Idempotent.
  void Stop();

  // Creates or changes; checks the dead-letter queue (exists, same kind, not itself, no cycle).
  void Put(std::string tenant, std::string name, QueueSettings settings,
           std::function<void(Result<std::pair<Queue, Written>>)> done);
  Result<Queue> Get(const std::string& tenant, const std::string& name);
  Result<Page<Queue>> List(const std::string& tenant, const std::string& cursor, int limit);
  // Conflict while another queue names it as its dead-letter queue. Its messages go with it.
  void Delete(std::string tenant, std::string name, std::function<void(Status)> done);
  Result<QueueStats> Stats(const std::string& tenant, const std::string& name);

  // One message, or a batch in one transaction (all or nothing: a bad entry fails the batch
  // with its field named). Results in the order sent.
  void Send(std::string tenant, std::string queue, std::vector<OutgoingMessage> messages,
            std::function<void(Result<std::vector<SendResult>>)> done);
  void Receive(std::string tenant, std::string queue, ReceiveOptions options,
               std::function<void(Result<ReceiveResult>)> done);
  // Acks (deletes) the messages the receipts name; a receipt that no longer names a message
  // held is stale. InvalidArgument for a receipt this server never issued.
  void Ack(std::string tenant, std::string queue, std::vector<std::string> receipts,
           std::function<void(Result<AckResult>)> done);
  // Makes the message visible again after `timeout_ms` (0: at once). Conflict when stale.
  void ChangeVisibility(std::string tenant, std::string queue, std::string receipt,
                        int64_t timeout_ms, std::function<void(Status)> done);
  // Moves up to `max` (0: all) messages of the dead-letter queue `dlq` back to the queues they
  // came from; returns how many moved.
  void Redrive(std::string tenant, std::string dlq, int64_t max,
               std::function<void(Result<int64_t>)> done);
  // Deletes every message of the queue; returns how many.
  void Purge(std::string tenant, std::string queue, std::function<void(Result<int64_t>)> done);

  // Messages of the queue in the order they were sent, after message id `after` (0: from the
  // first): what a dead-letter queue holds, for a person to look at. Receives nothing and
  // changes nothing. NotFound for an unknown queue. Reads the queue's index entries to order
  // them: meant for inspection, not for consuming.
  Result<Page<PeekedMessage>> Peek(const std::string& tenant, const std::string& queue,
                                   int64_t after, int limit);

  // The queue's figures since `since_ms`, oldest first (one a minute, kept for a day).
  // NotFound for an unknown queue.
  Result<std::vector<HistoryPoint>> History(const std::string& tenant, const std::string& queue,
                                            int64_t since_ms);
  // Records every queue's figures now and forgets those older than a day: the cleanup runs it
  // every minute (once per cluster).
  Status RecordHistory();

  // The cleanup job: expired messages and dedup entries, messages of deleted queues.
  Status Cleanup();
  // Writes the counts gathered since the last flush (every second from a timer; tests call it).
  Status FlushCounters();
  // Per-queue counters and depths for /metrics.
  void RenderMetrics(std::string& out);
  // Reads every queue's depth for the gauges (called every 15 s off the request path).
  Status RefreshDepths();

  // Used by topics: inserts `m` into `queue` inside `tx` (the queue's rules apply); NotFound,
  // or the Validation status of a message the queue refuses.
  Result<SendResult> SendInTx(store::Tx& tx, const std::string& tenant, const std::string& queue,
                              const OutgoingMessage& m);
  // Used by workflows: takes message `id` out of `queue` inside `tx` -- into the queue's
  // dead-letter queue when `dead_letter` and it has one, otherwise deleted (a FIFO group's next
  // message moves up). Nothing when the message is gone already.
  Status RemoveInTx(store::Tx& tx, const std::string& tenant, const std::string& queue, int64_t id,
                    bool dead_letter);
  // Counts messages SendInTx stored, once their transaction committed.
  void CountSent(const std::string& tenant, const std::string& queue, int64_t n);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace drover::queues
