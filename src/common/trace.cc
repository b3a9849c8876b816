#include "common/trace.h"

#include <cstdint>
#include <cstring>
#include <random>

namespace drover {
namespace {

std::mt19937_64& Generator() {
  thread_local std::mt19937_64 gen([] {
    std::seed_seq seq{std::random_device{}(), std::random_device{}(), std::random_device{}()};
    return std::mt19937_64(seq);
  }());
  return gen;
}

void PutHex(char* out, uint64_t v) {
  for (int i = 15; i >= 0; --i) *out++ = "0123456789abcdef"[(v >> (i * 4)) & 15];
}

}  // namespace

bool ValidTraceparent(std::string_view t) {
  if (t.size() != 55 || t[2] != '-' || t[35] != '-' || t[52] != '-') return false;
  bool trace_zero = true, span_zero = true;
  for (size_t i = 0; i < t.size(); ++i) {
    if (i == 2 || i == 35 || i == 52) continue;
    char c = t[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    if (i > 2 && i < 35 && c != '0') trace_zero = false;
    if (i > 35 && i < 52 && c != '0') span_zero = false;
  }
  return t.substr(0, 2) != "ff" && !trace_zero && !span_zero;
}

std::string NewTraceparent() {
  auto& gen = Generator();
  char out[55];
  std::memcpy(out, "00-", 3);
  PutHex(out + 3, gen());
  PutHex(out + 19, gen());
  out[35] = '-';
  PutHex(out + 36, gen() | 1);  // an all-zero parent id is invalid
  std::memcpy(out + 52, "-01", 3);
  return std::string(out, 55);
}

std::string ChildTraceparent(std::string_view parent) {
  if (!ValidTraceparent(parent)) return NewTraceparent();
  std::string out(parent);
  PutHex(out.data() + 36, Generator()() | 1);
  return out;
}

std::string_view TraceIdOf(std::string_view traceparent) {
  return ValidTraceparent(traceparent) ? traceparent.substr(3, 32) : std::string_view();
}

}  // namespace drover
