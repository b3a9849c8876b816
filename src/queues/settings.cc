#include "queues/settings.h"

#include <fmt/format.h>

#include <boost/json.hpp>

#include "common/duration.h"
#include "common/json.h"
#include "common/names.h"

namespace drover::queues {

Result<QueueSettings> ParseQueueDocument(const boost::json::value& doc, std::string_view name) {
  if (!doc.is_object()) return Status::InvalidArgument("the queue must be a JSON object");
  std::vector<FieldError> errors;
  const boost::json::object* spec =
      DocumentSpec(doc.as_object(), "Queue", name, errors, /*spec_optional=*/true);
  if (!spec) return Status::Validation(std::move(errors));
  QueueSettings s;
  JsonDecoder d(*spec, spec == &doc.as_object() ? "" : "spec.");
  if (auto f = d.Bool("fifo", false)) s.fifo = *f;
  ReadDurationField(d, "visibility_timeout", 0, kMaxVisibilityMs, &s.visibility_ms);
  ReadDurationField(d, "retention", kMinRetentionMs, kMaxRetentionMs, &s.retention_ms);
  ReadDurationField(d, "delay", 0, kMaxDelayMs, &s.delay_ms);
  if (auto m = d.Int("max_receives", false)) {
    if (*m < 0 || *m > kMaxReceivesLimit) {
      d.AddError("max_receives",
                 fmt::format("must be between 0 (no limit) and {}", kMaxReceivesLimit));
    } else {
      s.max_receives = *m;
    }
  }
  if (auto m = d.Int("max_message_size", false)) {
    if (*m < 1 || *m > kMaxMessageBytes) {
      d.AddError("max_message_size",
                 fmt::format("must be between 1 and {} bytes", kMaxMessageBytes));
    } else {
      s.max_message_bytes = *m;
    }
  }
  if (auto q = d.String("dead_letter_queue", false)) {
    if (!q->empty() && !IsValidName(*q)) {
      d.AddError("dead_letter_queue", std::string(kNameRule));
    } else if (*q == name) {
      d.AddError("dead_letter_queue", "a queue cannot be its own dead-letter queue");
    } else {
      s.dead_letter_queue = *q;
    }
  }
  AppendErrors(errors, d.Finish());
  if (!errors.empty()) return Status::Validation(std::move(errors));
  return s;
}

boost::json::object SettingsJson(const QueueSettings& s) {
  auto dur = [](int64_t ms) { return FormatDuration(std::chrono::milliseconds(ms)); };
  return {
      {"fifo", s.fifo},
      {"visibility_timeout", dur(s.visibility_ms)},
      {"max_receives", s.max_receives},
      {"dead_letter_queue", s.dead_letter_queue.empty() ? boost::json::value(nullptr)
                                                        : boost::json::value(s.dead_letter_queue)},
      {"retention", dur(s.retention_ms)},
      {"delay", dur(s.delay_ms)},
      {"max_message_size", s.max_message_bytes}};
}

}  // namespace drover::queues
