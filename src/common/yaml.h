#pragma once
// YAML documents as JSON values, so YAML specs go through the same strict JSON decoding.
// Plain scalars are typed as YAML 1.2's core schema types them (null, true/false, integers,
// floats); quoted scalars are always strings.
#include <boost/json/value.hpp>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace drover {

// Every document of a (possibly multi-document, `---`-separated) YAML stream. Empty documents
// are skipped. InvalidArgument with line and column for malformed YAML.
Result<std::vector<boost::json::value>> ParseYamlDocuments(std::string_view text);

// A single document; InvalidArgument when there is not exactly one.
Result<boost::json::value> ParseYaml(std::string_view text);

}  // namespace drover
