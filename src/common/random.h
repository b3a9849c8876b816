#pragma once
// Cryptographically secure random strings (OpenSSL RAND_bytes). Thread-safe.
#include <cstddef>
#include <string>

namespace drover {

// `bytes` random bytes as lower-case hex (2 * bytes characters).
std::string RandomHex(std::size_t bytes);

// `bytes` random bytes as unpadded base64url.
std::string RandomBase64Url(std::size_t bytes);

// SHA-256 of `data` as lower-case hex.
std::string Sha256Hex(std::string_view data);

// Constant-time equality of two strings of any length (length difference is not hidden).
bool ConstantTimeEqual(std::string_view a, std::string_view b);

}  // namespace drover
