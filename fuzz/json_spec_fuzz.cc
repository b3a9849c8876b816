// Request bodies as JSON: the strict object parse with its text check, then the decoders of every
// spec kind. Each either decodes or says what is wrong, in text that writes as valid JSON.
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace drover;
  auto obj = ParseJsonObject(fuzz::AsText(data, size));
  if (!obj.ok()) {
    fuzz::RequireWritable(obj.status());
    return 0;
  }
  fuzz::DecodeEverySpec(boost::json::value(std::move(*obj)));
  return 0;
}
