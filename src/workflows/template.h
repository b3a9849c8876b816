#pragma once
// Templates in step fields (docs/workflows.md): `{{ input.PATH }}` and
// `{{ steps.NAME.output.PATH }}`, PATH being dot-separated keys and array indexes. A string that
// is one template and nothing else renders as the referenced JSON value; a template inside
// longer text renders as the value's text. Pure; parsed by hand (no regular expressions).
#include <boost/json/fwd.hpp>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace drover::workflows {

struct TemplateRef {
  std::string step;               // "" for the execution's input
  std::vector<std::string> path;  // keys (or indexes) under input / the step's output
};

// A piece of a string: literal text, or a reference.
struct TemplatePart {
  std::string text;
  std::optional<TemplateRef> ref;
};

// Splits `s` into parts; InvalidArgument with the reason for an unclosed `{{`, an empty
// reference, or a root other than input / steps.NAME.output.
Result<std::vector<TemplatePart>> ParseTemplate(std::string_view s);

// Every reference in the strings of `v` (recursively), with the field it is in (`field` joined
// with keys and indexes, e.g. "spec.steps[1].input.rows"); a string that does not parse adds
// a field error instead.
struct FoundRef {
  std::string field;
  TemplateRef ref;
};
void CollectRefs(const boost::json::value& v, const std::string& field, std::vector<FoundRef>& out,
                 std::vector<FieldError>& errors);

// What references read: the execution's input, and an ended step's output (null: unknown).
struct RenderContext {
  const boost::json::value* input = nullptr;
  std::function<const boost::json::value*(std::string_view step)> output;
};

// `v` with every template rendered. Strings that fail to parse are left as they are (the
// definition was checked when it was stored).
boost::json::value Render(const boost::json::value& v, const RenderContext& ctx);
// One string rendered as text (a lone reference's string value without quotes).
std::string RenderText(std::string_view s, const RenderContext& ctx);

}  // namespace drover::workflows
