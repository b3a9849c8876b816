#include "schedule/spec.h"

#include <fmt/format.h>

#include <boost/json.hpp>

#include "common/duration.h"
#include "common/json.h"
#include "common/names.h"

namespace drover::schedule {
namespace {

using std::chrono::milliseconds;

// The `offset` field into `*out`: "3m", "-5m", "1h30m" (a duration that may be negative).
void ParseOffset(JsonDecoder& d, milliseconds* out) {
  auto text = d.String("offset", false);
  if (!text) return;
  std::string_view s = *text;
  bool negative = !s.empty() && s[0] == '-';
  if (negative) s.remove_prefix(1);
  auto v = ParseDuration(s);
  if (!v) return d.AddError("offset", "must be a duration like 3m or -5m");
  *out = negative ? -*v : *v;
}

std::optional<Boundary> ParseBoundary(JsonDecoder& d, std::string_view field, bool required) {
  auto text = d.String(field, required);
  if (!text) return std::nullopt;
  Boundary b;
  b.text = *text;
  if (auto t = ParseRfc3339(*text)) {
    b.at = *t;
    return b;
  }
  auto c = Cron::Parse(*text);
  if (!c.ok()) {
    d.AddError(field, "must be a cron expression or an RFC 3339 time: " + c.status().message());
    return std::nullopt;
  }
  b.cron = std::move(*c);
  return b;
}

std::optional<TimePoint> NextBoundary(const Boundary& b, const Zone& zone, TimePoint after,
                                      TimePoint created) {
  if (b.cron) return b.cron->Next(after, zone, created);
  if (b.at && *b.at > after) return b.at;
  return std::nullopt;
}

std::string Millis(milliseconds d) {
  return d.count() < 0 ? "-" + FormatDuration(-d) : FormatDuration(d);
}

}  // namespace

Result<ScheduleSpec> ParseScheduleDocument(const boost::json::value& doc, const std::string& name) {
  if (!doc.is_object()) return Status::InvalidArgument("the schedule must be an object");
  const auto& top = doc.as_object();
  std::vector<FieldError> errors;
  auto take = [&](const Status& s) { AppendErrors(errors, s); };
  const boost::json::object* spec_obj = DocumentSpec(top, "Schedule", name, errors);
  if (!spec_obj) return Status::Validation(std::move(errors));
  ScheduleSpec spec;
  JsonDecoder d(*spec_obj, "spec.");
  if (auto tz = d.String("timezone", false)) {
    auto z = Zone::Locate(*tz);
    if (!z.ok()) {
      d.AddError("timezone", z.status().message());
    } else {
      spec.zone = *z;
    }
  }
  if (auto c = d.String("cron", false)) {
    auto parsed = Cron::Parse(*c);
    if (!parsed.ok()) {
      d.AddError("cron", parsed.status().message());
    } else {
      spec.cron = std::move(*parsed);
    }
  }
  if (auto at = d.String("at", false)) {
    spec.at = ParseRfc3339(*at);
    if (!spec.at) d.AddError("at", "must be an RFC 3339 time like 2026-12-01T13:00:00Z");
  }
  ParseOffset(d, &spec.offset);
  if (auto c = d.Bool("catch_up", false)) spec.catch_up = *c;
  const auto* window = d.Raw("window", false);
  const auto* action = d.Raw("action", false);
  int forms =
      (d.Raw("cron", false) != nullptr) + (d.Raw("at", false) != nullptr) + (window != nullptr);
  if (forms != 1) {
    d.AddError("cron", forms == 0 ? "give one of cron, at or window"
                                  : "give only one of cron, at or window");
  }
  if (window) {
    if (!window->is_object()) {
      d.AddError("window", "must be an object");
    } else {
      JsonDecoder w(window->as_object(), "spec.window.");
      Window win;
      if (auto e = w.String("environment", true)) {
        if (!IsValidName(*e)) w.AddError("environment", std::string(kNameRule));
        win.environment = *e;
      }
      if (auto b = ParseBoundary(w, "start", true)) win.start = std::move(*b);
      if (w.Raw("stop", false)) win.stop = ParseBoundary(w, "stop", false);
      if (auto dur = w.String("duration", false)) {
        win.duration = ParseDuration(*dur);
        if (!win.duration || win.duration->count() <= 0) {
          w.AddError("duration", "must be a positive duration like 6h");
        }
      }
      if (!w.Raw("stop", false) && !w.Raw("duration", false)) {
        w.AddError("stop", "give stop (cron or RFC 3339 time) or duration");
      } else if (w.Raw("stop", false) && w.Raw("duration", false)) {
        w.AddError("duration", "give stop or duration, not both");
      }
      if (auto c = w.Int("capacity", true)) {
        if (*c < 0 || *c > 100000) w.AddError("capacity", "must be 0..100000");
        win.capacity = *c;
      }
      ParseOffset(w, &win.offset);
      take(w.Finish());
      spec.window = std::move(win);
    }
    if (action) d.AddError("action", "a window has no action (it holds its capacity)");
  } else if (!action || !action->is_object()) {
    d.AddError("action", action ? "must be an object" : "is required");
  } else {
    JsonDecoder a(action->as_object(), "spec.action.");
    if (auto t = a.String("type", true)) {
      spec.action.type = *t;
      if (*t == "scale" || *t == "stop") {
        if (auto e = a.String("environment", true)) {
          if (!IsValidName(*e)) a.AddError("environment", std::string(kNameRule));
          spec.action.environment = *e;
        }
        if (*t == "scale") {
          if (auto c = a.Int("capacity", true)) {
            if (*c < 0 || *c > 100000) a.AddError("capacity", "must be 0..100000");
            spec.action.capacity = *c;
          }
        }
      } else if (*t == "start_workflow") {
        if (auto w = a.String("workflow", true)) {
          if (!IsValidName(*w)) a.AddError("workflow", std::string(kNameRule));
          spec.action.workflow = *w;
        }
        if (const auto* in = a.Raw("input", false)) spec.action.input_json = ToJson(*in);
      } else if (*t != "cleanup") {
        a.AddError("type", "must be one of scale, stop, start_workflow, cleanup");
      }
    }
    take(a.Finish());
  }
  take(d.Finish());
  if (!errors.empty()) return Status::Validation(std::move(errors));
  return spec;
}

std::string SpecToJson(const ScheduleSpec& s) {
  boost::json::object o;
  if (s.cron) o["cron"] = s.cron->expression();
  if (s.at) o["at"] = FormatRfc3339(*s.at);
  if (s.window) {
    const auto& w = *s.window;
    boost::json::object win{{"environment", w.environment},
                            {"start", w.start.text},
                            {"capacity", w.capacity},
                            {"offset", Millis(w.offset)}};
    if (w.stop) win["stop"] = w.stop->text;
    if (w.duration) win["duration"] = FormatDuration(*w.duration);
    o["window"] = std::move(win);
  } else {
    boost::json::object a{{"type", s.action.type}};
    if (!s.action.environment.empty()) a["environment"] = s.action.environment;
    if (s.action.type == "scale") a["capacity"] = s.action.capacity;
    if (s.action.type == "start_workflow") {
      a["workflow"] = s.action.workflow;
      a["input"] = boost::json::parse(s.action.input_json);
    }
    o["action"] = std::move(a);
  }
  o["timezone"] = s.zone.name();
  o["offset"] = Millis(s.offset);
  o["catch_up"] = s.catch_up;
  return boost::json::serialize(o);
}

std::optional<TimePoint> NextFire(const ScheduleSpec& spec, TimePoint after, TimePoint created) {
  if (spec.cron) {
    auto t = spec.cron->Next(after - spec.offset, spec.zone, created);
    if (!t) return std::nullopt;
    return *t + spec.offset;
  }
  if (spec.at) {
    TimePoint t = *spec.at + spec.offset;
    if (t > after) return t;
  }
  return std::nullopt;
}

namespace {

// The latest fire time in [first, now], given that `first` is one. Looks back from `now` over a
// window that doubles until it holds a fire time, then steps forward: the cost follows the
// fires near `now`, not the length of the gap (a per-second cron missed for days).
TimePoint LatestFireUpTo(const ScheduleSpec& spec, TimePoint first, TimePoint created,
                         TimePoint now) {
  TimePoint latest = first;
  for (auto back = std::chrono::milliseconds(1000);; back *= 2) {
    TimePoint from = now - back;
    if (from <= first) break;  // the whole gap: step from `first`
    if (auto t = NextFire(spec, from, created); t && *t <= now) {
      latest = *t;
      break;
    }
  }
  for (int i = 0; i < 100000; ++i) {
    auto n = NextFire(spec, latest, created);
    if (!n || *n > now) break;
    latest = *n;
  }
  return latest;
}

}  // namespace

std::optional<Due> NextDue(const ScheduleSpec& spec, std::optional<TimePoint> last_due,
                           TimePoint created, TimePoint now) {
  auto next = NextFire(spec, last_due.value_or(created), created);
  if (!next) return std::nullopt;
  if (*next > now - std::chrono::seconds(1)) return Due{*next, false};
  if (spec.catch_up) return Due{LatestFireUpTo(spec, *next, created, now), true};
  auto after = NextFire(spec, now, created);
  if (!after) return std::nullopt;
  return Due{*after, false};
}

WindowState WindowAt(const Window& w, const Zone& zone, TimePoint now, TimePoint created) {
  auto next_start = [&](TimePoint after) -> std::optional<TimePoint> {
    auto t = NextBoundary(w.start, zone, after - w.offset, created);
    if (!t) return std::nullopt;
    return *t + w.offset;
  };
  WindowState st;
  if (w.duration) {
    // Open iff a start happened within the last `duration`.
    auto s = next_start(now - *w.duration);
    if (s && *s <= now) {
      TimePoint latest = *s;
      for (int i = 0; i < 10000; ++i) {  // the latest start up to now (overlapping windows)
        auto n = next_start(latest);
        if (!n || *n > now) break;
        latest = *n;
      }
      st.open = true;
      st.next_change = latest + *w.duration;
    } else {
      st.next_change = next_start(now);
    }
    return st;
  }
  auto start = next_start(now);
  auto stop = NextBoundary(*w.stop, zone, now, created);
  if (w.start.at) {
    // A fixed start: open from it until the first stop after it.
    TimePoint s = *w.start.at + w.offset;
    auto first_stop = NextBoundary(*w.stop, zone, s, created);
    st.open = s <= now && (!first_stop || *first_stop > now);
    st.next_change = s > now ? std::optional<TimePoint>(s) : st.open ? first_stop : std::nullopt;
    return st;
  }
  // A recurring start: open iff the next boundary is a stop.
  st.open = stop && (!start || *stop < *start);
  if (start && stop) {
    st.next_change = std::min(*start, *stop);
  } else {
    st.next_change = start ? start : stop;
  }
  return st;
}

}  // namespace drover::schedule
