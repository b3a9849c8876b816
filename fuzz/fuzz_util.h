#pragma once
// Shared by the fuzz targets: the input as text, and a check that what drover writes back as
// JSON is always valid UTF-8 JSON (the promise of common/json.h), whatever came in.
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>

#include "alerts/rule_spec.h"
#include "common/json.h"
#include "common/text.h"
#include "env/spec.h"
#include "gateway/route_spec.h"
#include "queues/filter.h"
#include "queues/settings.h"
#include "schedule/spec.h"
#include "workflows/definition.h"
#include "workflows/history.h"
#include "workflows/template.h"

namespace drover::fuzz {

inline std::string_view AsText(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// Aborts (a finding) unless `json` is valid UTF-8 JSON.
inline void RequireValidJson(std::string_view json) {
  boost::system::error_code ec;
  boost::json::parse(json, ec);
  if (ec || !IsUtf8(json)) std::abort();
}

// A status's message and field errors written as JSON strings, as a problem+json body has them:
// the result must parse as JSON and be UTF-8 whatever bytes the status holds.
inline void RequireWritable(const Status& s) {
  std::string out = "[";
  AppendJsonString(out, s.message());
  for (const auto& e : s.errors()) {
    out += ',';
    AppendJsonString(out, e.field);
    out += ',';
    AppendJsonString(out, e.message);
  }
  out += ']';
  RequireValidJson(out);
}

// Every spec decoder over one document: a spec that decodes writes valid JSON and reads back
// the same; one that does not says why in writable text.
inline void DecodeEverySpec(const boost::json::value& doc) {
  if (auto env = env::ParseEnvironmentDocument(doc, "fuzz"); env.ok()) {
    std::string json = env::SpecToJson(*env);
    RequireValidJson(json);
    auto again = env::ParseEnvironmentDocument(boost::json::parse(json), "fuzz");
    if (!again.ok() || env::SpecToJson(*again) != json) std::abort();
  } else {
    RequireWritable(env.status());
  }
  if (auto s = schedule::ParseScheduleDocument(doc, "fuzz"); s.ok()) {
    RequireValidJson(schedule::SpecToJson(*s));
  } else {
    RequireWritable(s.status());
  }
  if (auto q = queues::ParseQueueDocument(doc, "fuzz"); q.ok()) {
    std::string json = boost::json::serialize(queues::SettingsJson(*q));
    RequireValidJson(json);
    auto again = queues::ParseQueueDocument(boost::json::parse(json), "fuzz");
    if (!again.ok() || !(*again == *q)) std::abort();
  } else {
    RequireWritable(q.status());
  }
  // The document as a filter policy, tried on its own string values as attributes.
  if (auto f = queues::ParseFilter(doc); f.ok()) {
    std::map<std::string, std::string> attrs;
    if (doc.is_object()) {
      for (const auto& kv : doc.as_object()) {
        if (kv.value().is_string()) attrs[std::string(kv.key())] = kv.value().as_string();
      }
    }
    (void)queues::Matches(*f, attrs);
  } else {
    RequireWritable(f.status());
  }
  // A workflow: its templates rendered with the document as the input, and the engine's first
  // decisions from an empty history.
  if (auto w = workflows::ParseWorkflowDocument(doc, "fuzz"); w.ok()) {
    workflows::RenderContext ctx{&doc, [&](std::string_view) { return &doc; }};
    for (int i = 0; i < w->size(); ++i) {
      const auto& fields = *w->At(i).parsed;
      RequireValidJson(boost::json::serialize(workflows::Render(fields, ctx)));
    }
    workflows::ExecutionState state;
    auto d = workflows::Decide(*w, state, 1000, true);
    for (const auto& e : d.events) workflows::Apply(state, e);
    (void)workflows::Decide(*w, state, 1'000'000, true);
  } else {
    RequireWritable(w.status());
  }
  // A route: every upstream URL it kept parses again the same.
  if (auto r = gateway::ParseRouteDocument(doc, "fuzz"); r.ok()) {
    for (const auto& u : r->upstreams) {
      auto again = gateway::ParseUpstreamUrl(u.text);
      if (!again.ok() || again->authority() != u.authority() || again->base != u.base) abort();
    }
  } else {
    RequireWritable(r.status());
  }
  // An alert rule: its signal prints back to a selector that parses to the same text, and its
  // annotations render.
  auto same_selector = [](const alerts::Selector& sel) {
    auto again = alerts::ParseSelector(sel.ToString());
    if (!again.ok() || again->ToString() != sel.ToString()) abort();
  };
  if (auto a = alerts::ParseRuleDocument(doc, "fuzz"); a.ok()) {
    same_selector(a->signal);
    for (const auto& [key, text] : a->annotations) {
      (void)alerts::RenderTemplate(text, {"fuzz", 1.5, "warning", &a->labels});
    }
  } else {
    RequireWritable(a.status());
  }
  if (doc.is_string()) {
    if (auto sel = alerts::ParseSelector(doc.as_string()); sel.ok()) same_selector(*sel);
  }
}

}  // namespace drover::fuzz
