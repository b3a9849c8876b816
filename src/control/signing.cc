#include "control/signing.h"

#include <fmt/format.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <charconv>
#include <cstdio>

#include "common/files.h"
#include "common/random.h"

namespace drover::control {
namespace {

using PkeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;

Result<PkeyPtr> LoadPem(const std::string& path, bool is_private) {
  auto pem = ReadFile(path);
  if (!pem) return Status::InvalidArgument(fmt::format("cannot read key file {}", path));
  BIO* bio = BIO_new_mem_buf(pem->data(), static_cast<int>(pem->size()));
  EVP_PKEY* k = is_private ? PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr)
                           : PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (!k || EVP_PKEY_id(k) != EVP_PKEY_ED25519) {
    if (k) EVP_PKEY_free(k);
    return Status::InvalidArgument(
        fmt::format("{} is not a PEM ed25519 {} key", path, is_private ? "private" : "public"));
  }
  return PkeyPtr(k, &EVP_PKEY_free);
}

std::string BioText(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(n));
}

}  // namespace

std::optional<SignatureHeader> ParseSignatureHeader(std::string_view v) {
  SignatureHeader h;
  bool version = false, index = false, expires = false, sig = false;
  while (!v.empty()) {
    auto semi = v.find(';');
    std::string_view part = v.substr(0, semi);
    v = semi == std::string_view::npos ? std::string_view() : v.substr(semi + 1);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    while (!part.empty() && part.back() == ' ') part.remove_suffix(1);
    auto num = [](std::string_view s, int64_t* out) {
      auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
      return ec == std::errc() && p == s.data() + s.size();
    };
    if (part == "v1") {
      version = true;
    } else if (part.starts_with("index=")) {
      index = num(part.substr(6), &h.index);
    } else if (part.starts_with("expires=")) {
      expires = num(part.substr(8), &h.expires);
    } else if (part.starts_with("sig=")) {
      auto raw = Base64UrlDecode(part.substr(4));
      sig = raw.has_value();
      if (raw) h.sig = std::move(*raw);
    }
  }
  if (!version || !index || !expires || !sig) return std::nullopt;
  return h;
}

std::string FormatSignatureHeader(const SignatureHeader& h) {
  return fmt::format("v1; index={}; expires={}; sig={}", h.index, h.expires,
                     Base64UrlEncode(h.sig));
}

std::string SignedMessage(std::string_view view, std::string_view environment, int64_t index,
                          int64_t expires, std::string_view body) {
  return fmt::format("drover-cc-v1\n{}\n{}\n{}\n{}\n{}", view, environment, index, expires, body);
}

struct SigningKey::Impl {
  PkeyPtr key{nullptr, &EVP_PKEY_free};
};
SigningKey::SigningKey(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SigningKey::~SigningKey() = default;
SigningKey::SigningKey(SigningKey&&) noexcept = default;

Result<SigningKey> SigningKey::Load(const std::string& path) {
  auto k = LoadPem(path, true);
  if (!k.ok()) return k.status();
  auto impl = std::make_unique<Impl>();
  impl->key = std::move(*k);
  return SigningKey(std::move(impl));
}

Result<std::pair<std::string, std::string>> SigningKey::Generate() {
  EVP_PKEY* k = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  if (!k) return Status::Internal("ed25519 key generation failed");
  PkeyPtr key(k, &EVP_PKEY_free);
  BIO* priv = BIO_new(BIO_s_mem());
  BIO* pub = BIO_new(BIO_s_mem());
  bool ok = PEM_write_bio_PrivateKey(priv, k, nullptr, nullptr, 0, nullptr, nullptr) == 1 &&
            PEM_write_bio_PUBKEY(pub, k) == 1;
  std::pair<std::string, std::string> out{BioText(priv), BioText(pub)};
  BIO_free(priv);
  BIO_free(pub);
  if (!ok) return Status::Internal("cannot encode the ed25519 key as PEM");
  return out;
}

std::string SigningKey::Sign(std::string_view message) const {
  std::string sig(64, '\0');
  size_t len = sig.size();
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool ok =
      EVP_DigestSignInit(ctx, nullptr, nullptr, nullptr, impl_->key.get()) == 1 &&
      EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                     reinterpret_cast<const unsigned char*>(message.data()), message.size()) == 1;
  EVP_MD_CTX_free(ctx);
  if (!ok) return {};
  sig.resize(len);
  return sig;
}

struct VerifyKey::Impl {
  PkeyPtr key{nullptr, &EVP_PKEY_free};
};
VerifyKey::VerifyKey(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
VerifyKey::~VerifyKey() = default;
VerifyKey::VerifyKey(VerifyKey&&) noexcept = default;

Result<VerifyKey> VerifyKey::Load(const std::string& path) {
  auto k = LoadPem(path, false);
  if (!k.ok()) return k.status();
  auto impl = std::make_unique<Impl>();
  impl->key = std::move(*k);
  return VerifyKey(std::move(impl));
}

bool VerifyKey::Verify(std::string_view message, std::string_view sig) const {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool ok =
      EVP_DigestVerifyInit(ctx, nullptr, nullptr, nullptr, impl_->key.get()) == 1 &&
      EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                       reinterpret_cast<const unsigned char*>(message.data()), message.size()) == 1;
  EVP_MD_CTX_free(ctx);
  return ok;
}

}  // namespace drover::control
