#include "control/signing.h"

#include <gtest/gtest.h>

#include <fstream>

#include "testing/temp_dir.h"

namespace drover::control {
namespace {

TEST(Signing, SignsAndVerifiesAndRejectsTampering) {
  testing::TempDir dir;
  auto pair = SigningKey::Generate();
  ASSERT_TRUE(pair.ok());
  std::ofstream(dir.path() + "/k") << pair->first;
  std::ofstream(dir.path() + "/k.pub") << pair->second;
  auto sk = SigningKey::Load(dir.path() + "/k");
  auto vk = VerifyKey::Load(dir.path() + "/k.pub");
  ASSERT_TRUE(sk.ok()) << sk.status().ToString();
  ASSERT_TRUE(vk.ok()) << vk.status().ToString();
  std::string msg = SignedMessage("agent", "web", 42, 1800000000, R"({"cc-a-ref":"main"})");
  SignatureHeader h{42, 1800000000, sk->Sign(msg)};
  auto parsed = ParseSignatureHeader(FormatSignatureHeader(h));
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->index, 42);
  EXPECT_EQ(parsed->expires, 1800000000);
  EXPECT_TRUE(vk->Verify(msg, parsed->sig));
  EXPECT_FALSE(vk->Verify(SignedMessage("agent", "web", 42, 1800000000, R"({"cc-a-ref":"evil"})"),
                          parsed->sig));
  EXPECT_FALSE(vk->Verify(SignedMessage("agent", "web", 43, 1800000000, R"({"cc-a-ref":"main"})"),
                          parsed->sig));
  EXPECT_FALSE(vk->Verify(msg, ""));
}

TEST(Signing, RejectsMalformedHeadersAndKeys) {
  EXPECT_FALSE(ParseSignatureHeader(""));
  EXPECT_FALSE(ParseSignatureHeader("v1; index=1; expires=2"));
  EXPECT_FALSE(ParseSignatureHeader("v1; index=x; expires=2; sig=AA"));
  EXPECT_FALSE(ParseSignatureHeader("v1; index=1; expires=2; sig=!!"));
  testing::TempDir dir;
  std::ofstream(dir.path() + "/bad") << "not a key";
  EXPECT_FALSE(SigningKey::Load(dir.path() + "/bad").ok());
  EXPECT_FALSE(VerifyKey::Load(dir.path() + "/missing").ok());
}

}  // namespace
}  // namespace drover::control
