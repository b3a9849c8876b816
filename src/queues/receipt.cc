#include "queues/receipt.h"

#include <openssl/rand.h>

#include "common/random.h"

namespace drover::queues {

int64_t NewNonce(bool fifo) {
  uint64_t r = 0;
  RAND_bytes(reinterpret_cast<unsigned char*>(&r), sizeof r);
  r &= 0x3fffffffffffffffULL;  // positive on every backend
  r = (r & ~1ULL) | (fifo ? 1 : 0);
  if (r < 2) r += 2;
  return static_cast<int64_t>(r);
}

std::string EncodeReceipt(int64_t id, int64_t nonce) {
  std::string raw(16, '\0');
  for (int i = 0; i < 8; ++i) {
    raw[i] = static_cast<char>(static_cast<uint64_t>(id) >> (56 - 8 * i));
    raw[8 + i] = static_cast<char>(static_cast<uint64_t>(nonce) >> (56 - 8 * i));
  }
  return Base64UrlEncode(raw);
}

std::optional<std::pair<int64_t, int64_t>> DecodeReceipt(std::string_view receipt) {
  if (receipt.size() != 22) return std::nullopt;
  auto raw = Base64UrlDecode(receipt);
  if (!raw || raw->size() != 16) return std::nullopt;
  uint64_t id = 0, nonce = 0;
  for (int i = 0; i < 8; ++i) {
    id = (id << 8) | static_cast<unsigned char>((*raw)[i]);
    nonce = (nonce << 8) | static_cast<unsigned char>((*raw)[8 + i]);
  }
  if (id == 0 || id > INT64_MAX || nonce < 2 || nonce > 0x3fffffffffffffffULL) return std::nullopt;
  return std::make_pair(static_cast<int64_t>(id), static_cast<int64_t>(nonce));
}

}  // namespace drover::queues
