#pragma once
// Signed control-center sets (docs/environments.md): with `drover server --signing-key FILE` every
// /v1/cc/agent and /v1/cc/watcher answer carries
//   X-Drover-Signature: v1; index=<N>; expires=<unix seconds>; sig=<base64url ed25519>
// over SignedMessage(): the view, the environment, the index, the expiry and the exact body
// bytes (the body is canonical JSON: keys sorted, no whitespace, one escaping). Agents given
// the public key (--verify-key) refuse sets that are unsigned, tampered with, expired, or older
// than one they already accepted. Keys are PEM files (PKCS#8 private, SubjectPublicKeyInfo
// public), as `openssl genpkey -algorithm ed25519` makes them.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace drover::control {

struct SignatureHeader {
  int64_t index = 0;
  int64_t expires = 0;  // Unix seconds
  std::string sig;      // raw signature bytes
};

// "v1; index=..; expires=..; sig=.."; nullopt when malformed.
std::optional<SignatureHeader> ParseSignatureHeader(std::string_view v);
std::string FormatSignatureHeader(const SignatureHeader& h);

// What is signed: "drover-cc-v1\n<view>\n<environment>\n<index>\n<expires>\n<body>".
std::string SignedMessage(std::string_view view, std::string_view environment, int64_t index,
                          int64_t expires, std::string_view body);

class SigningKey {
 public:
  ~SigningKey();
  SigningKey(SigningKey&&) noexcept;
  // Loads a PEM private key; InvalidArgument when the file is missing or not ed25519.
  static Result<SigningKey> Load(const std::string& path);
  // A new key pair as PEM text: {private, public}.
  static Result<std::pair<std::string, std::string>> Generate();
  std::string Sign(std::string_view message) const;

 private:
  struct Impl;
  explicit SigningKey(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

class VerifyKey {
 public:
  ~VerifyKey();
  VerifyKey(VerifyKey&&) noexcept;
  // Loads a PEM public key; InvalidArgument when the file is missing or not ed25519.
  static Result<VerifyKey> Load(const std::string& path);
  bool Verify(std::string_view message, std::string_view sig) const;

 private:
  struct Impl;
  explicit VerifyKey(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace drover::control
