#include "common/random.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <sys/random.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string_view>
#include <vector>

namespace drover {
namespace {

// The kernel's CSPRNG (getrandom(2)), not OpenSSL's: OpenSSL 3 initializes its providers on the
// first RAND_bytes, which maps ~2 MB of its code into every process (the agent's footprint).
std::vector<unsigned char> RandomBytes(std::size_t n) {
  std::vector<unsigned char> buf(n);
  std::size_t got = 0;
  while (got < n) {
    ssize_t r = ::getrandom(buf.data() + got, n - got, 0);
    if (r < 0 && errno == EINTR) continue;
    // Running without randomness would mint guessable keys: an impossible state, so fail hard.
    if (r <= 0) std::abort();
    got += static_cast<std::size_t>(r);
  }
  return buf;
}

std::string ToHex(const unsigned char* p, std::size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(n * 2, '\0');
  for (std::size_t i = 0; i < n; ++i) {
    out[2 * i] = kHex[p[i] >> 4];
    out[2 * i + 1] = kHex[p[i] & 15];
  }
  return out;
}

}  // namespace

std::string RandomHex(std::size_t bytes) {
  auto b = RandomBytes(bytes);
  return ToHex(b.data(), b.size());
}

namespace {
constexpr char kBase64Url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
}  // namespace

std::string Base64UrlEncode(std::string_view in) {
  std::string out;
  out.reserve((in.size() * 4 + 2) / 3);
  unsigned acc = 0;
  int bits = 0;
  for (unsigned char c : in) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += kBase64Url[(acc >> bits) & 63];
    }
  }
  if (bits > 0) out += kBase64Url[(acc << (6 - bits)) & 63];
  return out;
}

std::optional<std::string> Base64UrlDecode(std::string_view in) {
  std::string out;
  unsigned acc = 0;
  int bits = 0;
  for (char c : in) {
    const char* p = c ? std::strchr(kBase64Url, c) : nullptr;
    if (!p) return std::nullopt;
    acc = (acc << 6) | static_cast<unsigned>(p - kBase64Url);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

std::string RandomBase64Url(std::size_t bytes) {
  auto b = RandomBytes(bytes);
  return Base64UrlEncode(std::string_view(reinterpret_cast<const char*>(b.data()), b.size()));
}

Sha256Digest Sha256(std::string_view data) {
  // The low-level SHA-256 calls: no allocation and no provider lookup, unlike EVP in OpenSSL 3
  // (measured ~2x the instructions). Deprecated there, but it is the same implementation.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  SHA256_CTX ctx;
  SHA256_Init(&ctx);
  SHA256_Update(&ctx, data.data(), data.size());
  Sha256Digest out{};
  SHA256_Final(out.data(), &ctx);
#pragma GCC diagnostic pop
  return out;
}

Sha256Digest HmacSha256(std::string_view key, std::string_view data) {
  Sha256Digest out{};
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data(), &len);
  return out;
}

std::string Sha256Hex(std::string_view data) {
  auto d = Sha256(data);
  return ToHex(d.data(), d.size());
}

std::string DigestHex(const Sha256Digest& d) { return ToHex(d.data(), d.size()); }

bool ConstantTimeEqual(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace drover
