#pragma once
// Cryptographically secure random strings (OpenSSL RAND_bytes). Thread-safe.
#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace drover {

// `bytes` random bytes as lower-case hex (2 * bytes characters).
std::string RandomHex(std::size_t bytes);

// `bytes` random bytes as unpadded base64url.
std::string RandomBase64Url(std::size_t bytes);

// Unpadded base64url (RFC 4648 §5) of `in`, and back (nullopt for a character outside it).
std::string Base64UrlEncode(std::string_view in);
std::optional<std::string> Base64UrlDecode(std::string_view in);

using Sha256Digest = std::array<unsigned char, 32>;

// SHA-256 of `data`.
Sha256Digest Sha256(std::string_view data);
// SHA-256 of `data` as lower-case hex.
std::string Sha256Hex(std::string_view data);
std::string DigestHex(const Sha256Digest& d);

// HMAC-SHA-256 of `data` under `key`.
Sha256Digest HmacSha256(std::string_view key, std::string_view data);

// Constant-time equality of two strings of any length (length difference is not hidden).
bool ConstantTimeEqual(std::string_view a, std::string_view b);

}  // namespace drover
