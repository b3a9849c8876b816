#include "env/runs.h"

#include <fmt/format.h>

#include <boost/json/parse.hpp>

#include "common/json.h"
#include "common/random.h"
#include "control/values.h"
#include "env/rows.h"
#include "store/lease.h"

namespace drover::env {

void RunService::RecordRun(Instance inst, RunReport report,
                           std::function<void(Result<std::pair<Run, bool>>)> done) {
  struct Op {
    Run run;
    bool created = false;
    std::function<void(Result<std::pair<Run, bool>>)> done;
  };
  auto op = std::make_shared<Op>();
  op->run.report = std::move(report);
  op->run.received_at_ms = ToUnixMillis(clock_.Now());
  op->done = std::move(done);
  store_.Write(
      [op, inst = std::move(inst)](store::Tx& tx) -> Status {
        auto& rep = op->run.report;
        std::optional<Run> existing;
        DROVER_RETURN_IF_ERROR(
            tx.Query(std::string(kRunColumns) + " WHERE instance = ? AND run_id = ?",
                     {inst.id, rep.run_id}, [&](const store::Row& r) { existing = ReadRun(r); }));
        op->created = !existing;
        if (existing) {
          op->run = std::move(*existing);
          return Status::Ok();
        }
        auto seq = tx.QueryInt("SELECT last_run_seq FROM instances WHERE id = ?", {inst.id});
        if (!seq.ok()) return seq.status();
        op->run.seq = *seq + 1;
        DROVER_RETURN_IF_ERROR(
            tx.Exec(
                  "INSERT INTO runs (instance, seq, run_id, var_index, commit_sha, status, reason,"
                  " pre_exit, main_exit, post_exit, started_at, finished_at, log_tail,"
                  " received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                  {inst.id, op->run.seq, rep.run_id, rep.var_index, rep.commit, rep.status,
                   rep.reason, OptInt(rep.pre_exit), OptInt(rep.main_exit), OptInt(rep.post_exit),
                   rep.started_at_ms, rep.finished_at_ms, rep.log_tail, op->run.received_at_ms})
                .status());
        DROVER_RETURN_IF_ERROR(
            tx.Exec("UPDATE instances SET last_run_seq = ? WHERE id = ?", {op->run.seq, inst.id})
                .status());
        auto idx = tx.NextIndex();
        if (!idx.ok()) return idx.status();
        if (rep.status == "failed") {
          DROVER_RETURN_IF_ERROR(AddEvent(
              tx, inst.tenant, inst.environment, *idx, inst.id, "run-failed",
              fmt::format("run {} at {}: {}", op->run.seq,
                          rep.commit.empty() ? "no commit" : rep.commit.substr(0, 12), rep.reason),
              op->run.received_at_ms));
        }
        return tx.Notify(kTopic);
      },
      [op](Status s) {
        if (!s.ok()) return op->done(s);
        op->done(std::make_pair(std::move(op->run), op->created));
      });
}

Result<Page<Run>> RunService::Runs(const std::string& instance, const std::string& cursor,
                                   int limit) {
  auto below = ParseCursor(cursor);
  if (!below.ok()) return below.status();
  Page<Run> page;
  Status s = store_.Read([&](store::Tx& tx) {
    return tx.Query(
        std::string(kRunColumns) + " WHERE instance = ? AND seq < ? ORDER BY seq DESC LIMIT ?",
        {instance, *below == 0 ? INT64_MAX : *below, int64_t{limit + 1}},
        [&](const store::Row& r) { page.items.push_back(ReadRun(r)); });
  });
  if (!s.ok()) return s;
  page.Trim(limit, [](const auto& last) { return std::to_string(last.seq); });
  return page;
}

Result<Run> RunService::GetRun(const std::string& instance, int64_t seq) {
  std::optional<Run> found;
  Status s = store_.Read([&](store::Tx& tx) {
    return tx.Query(std::string(kRunColumns) + " WHERE instance = ? AND seq = ?", {instance, seq},
                    [&](const store::Row& r) { found = ReadRun(r); });
  });
  if (!s.ok()) return s;
  if (!found) return Status::NotFound(fmt::format("instance '{}' has no run {}", instance, seq));
  return std::move(*found);
}

}  // namespace drover::env
