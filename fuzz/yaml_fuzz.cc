// YAML documents (environment and schedule specs, drover apply): the bounded event-based reader,
// then the spec decoders. Aliases, deep nesting and long scalars must cost bounded time and
// memory; text must come out as UTF-8 without NUL.
#include "common/yaml.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace drover;
  auto docs = ParseYamlDocuments(fuzz::AsText(data, size));
  if (!docs.ok()) {
    fuzz::RequireWritable(docs.status());
    return 0;
  }
  for (const auto& doc : *docs) {
    if (!CheckJsonText(doc).ok()) std::abort();  // the reader promised text
    fuzz::RequireValidJson(ToJson(doc));
    fuzz::DecodeEverySpec(doc);
  }
  return 0;
}
