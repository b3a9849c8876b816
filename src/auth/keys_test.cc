#include "auth/keys.h"

#include <gtest/gtest.h>

#include <future>

#include "common/random.h"
#include "testing/fake_clock.h"
#include "testing/faulty_store.h"
#include "testing/store_fixture.h"

namespace drover::auth {
namespace {

class KeysTest : public ::testing::TestWithParam<testing::Backend> {
 protected:
  void SetUp() override {
    store_ = testing::OpenStoreAt(testing::NewStoreUrl(GetParam(), dir_, "k.db"));
    ASSERT_TRUE(store_);
    keys_ = std::make_unique<KeyService>(*store_, SystemClock::Get());
  }
  Result<NewKey> Create(const Principal& caller, KeySpec spec) {
    std::promise<Result<NewKey>> p;
    keys_->Create(caller, std::move(spec), [&](Result<NewKey> r) { p.set_value(std::move(r)); });
    return p.get_future().get();
  }
  Status Delete(const Principal& caller, const std::string& id) {
    std::promise<Status> p;
    keys_->Delete(caller, id, [&](Status s) { p.set_value(s); });
    return p.get_future().get();
  }
  testing::TempDir dir_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<KeyService> keys_;
  Principal admin_{"k_admin", "admin", Role::kAdmin, "default", {}, {}, "", ""};
};

DROVER_ON_ALL_BACKENDS(KeysTest);

TEST_P(KeysTest, CreatedKeyAuthenticatesAndOnlyItsHashIsStored) {
  auto k = Create(admin_, {"ci", Role::kUser, "team-a", {}, {}});
  ASSERT_TRUE(k.ok()) << k.status().ToString();
  EXPECT_TRUE(k->secret.starts_with("drv_"));
  EXPECT_GE(k->secret.size(), 4u + 22u);  // >= 128 bits of base64url
  auto p = keys_->Authenticate(k->secret);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ((*p)->role, Role::kUser);
  EXPECT_EQ((*p)->tenant, "team-a");
  EXPECT_EQ((*p)->key_id, k->record.id);
  std::string stored;
  ASSERT_TRUE(store_
                  ->Read([&](store::Tx& tx) {
                    return tx.Query("SELECT hash FROM api_keys WHERE id = ?", {k->record.id},
                                    [&](const store::Row& r) { stored = r.String(0); });
                  })
                  .ok());
  EXPECT_EQ(stored, Sha256Hex(k->secret));
  EXPECT_EQ(stored.find(k->secret), std::string::npos);
}

TEST_P(KeysTest, WrongKeysAreRejected) {
  ASSERT_TRUE(Create(admin_, {"ci", Role::kUser, "", {}, {}}).ok());
  EXPECT_EQ(keys_->Authenticate("drv_nope").status().code(), Status::Code::kUnauthenticated);
  EXPECT_EQ(keys_->Authenticate("").status().code(), Status::Code::kUnauthenticated);
  EXPECT_EQ(keys_->Authenticate(std::string(10000, 'x')).status().code(),
            Status::Code::kUnauthenticated);
}

TEST_P(KeysTest, DeletedKeyStopsWorkingAtOnce) {
  auto k = Create(admin_, {"tmp", Role::kUser, "", {}, {}});
  ASSERT_TRUE(k.ok());
  ASSERT_TRUE(keys_->Authenticate(k->secret).ok());  // now cached
  ASSERT_TRUE(Delete(admin_, k->record.id).ok());
  EXPECT_EQ(keys_->Authenticate(k->secret).status().code(), Status::Code::kUnauthenticated);
  EXPECT_TRUE(Delete(admin_, k->record.id).IsNotFound());
}

TEST_P(KeysTest, NonAdminsStayInTheirTenantAndCannotMintPrivilege) {
  Principal user{"k_u", "u", Role::kUser, "team-a", {}, {}, "", ""};
  EXPECT_EQ(Create(user, {"x", Role::kUser, "team-b", {}, {}}).status().code(),
            Status::Code::kPermissionDenied);
  EXPECT_EQ(Create(user, {"x", Role::kAdmin, "", {}, {}}).status().code(),
            Status::Code::kPermissionDenied);
  auto own = Create(user, {"x", Role::kViewer, "", {}, {}});
  ASSERT_TRUE(own.ok());
  EXPECT_EQ(own->record.tenant, "team-a");
  auto other = Create(admin_, {"y", Role::kUser, "team-b", {}, {}});
  ASSERT_TRUE(other.ok());
  EXPECT_TRUE(Delete(user, other->record.id).IsNotFound()) << "another tenant's key is 404";
  auto page = keys_->List(user, std::nullopt, "", 100);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->items.size(), 1u);
  EXPECT_EQ(page->items[0].id, own->record.id);
}

TEST_P(KeysTest, ValidationErrorsNameTheField) {
  auto r = Create(admin_, {"Bad Name", Role::kUser, "UPPER", -1.0, 0.0});
  ASSERT_EQ(r.status().code(), Status::Code::kValidation);
  std::vector<std::string> fields;
  for (const auto& e : r.status().errors()) fields.push_back(e.field);
  EXPECT_EQ(fields,
            (std::vector<std::string>{"name", "tenant", "rate_limit.rps", "rate_limit.burst"}));
}

TEST_P(KeysTest, ListPagesInIdOrder) {
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(Create(admin_, {"k" + std::to_string(i), Role::kUser, "", {}, {}}).ok());
  }
  std::vector<std::string> ids;
  std::string cursor;
  do {
    auto page = keys_->List(admin_, std::nullopt, cursor, 2);
    ASSERT_TRUE(page.ok());
    EXPECT_LE(page->items.size(), 2u);
    for (auto& k : page->items) ids.push_back(k.id);
    cursor = page->next_cursor;
  } while (!cursor.empty());
  ASSERT_EQ(ids.size(), 5u);
  EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));
}

TEST_P(KeysTest, BootstrapOnlyOnAnEmptyStore) {
  EXPECT_EQ(keys_->Bootstrap(std::string("short")).status().code(), Status::Code::kInvalidArgument);
  auto first = keys_->Bootstrap(std::string("my-bootstrap-token-123"));
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(first->has_value());
  auto p = keys_->Authenticate("my-bootstrap-token-123");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ((*p)->role, Role::kAdmin);
  auto second = keys_->Bootstrap(std::nullopt);
  ASSERT_TRUE(second.ok());
  EXPECT_FALSE(second->has_value());
}

// The negative paths of authentication, with the store made to fail reads: an answer of
// Unauthenticated (not Unavailable) proves no read was tried.
class UnknownKeysTest : public KeysTest {
 protected:
  void Rebuild() {
    faulty_ = std::make_unique<testing::FaultyStore>(*store_);
    keys_ = std::make_unique<KeyService>(*faulty_, clock_);
  }
  void TearDown() override { keys_.reset(); }  // before the store it reads
  // Stands still unless the test moves it: the lookup budget never refills.
  testing::FakeClock clock_;
  std::unique_ptr<testing::FaultyStore> faulty_;
};

DROVER_ON_ALL_BACKENDS(UnknownKeysTest);

TEST_P(UnknownKeysTest, ATokenWithoutOurSignatureIsRefusedWithoutARead) {
  Rebuild();
  auto k = Create(admin_, {"ci", Role::kUser, "", {}, {}});
  ASSERT_TRUE(k.ok());
  EXPECT_EQ(k->secret.size(), 47u);
  EXPECT_TRUE(keys_->Authenticate(k->secret).ok());
  faulty_->fail_reads = true;
  // The same shape as ours, a signature that does not match: never looked up.
  std::string forged = k->secret.substr(0, 36) + "AAAAAAAAAAA";
  for (int i = 0; i < 1000; ++i) {
    std::string random = "drv_" + RandomBase64Url(32);
    auto r = keys_->Authenticate(i % 2 ? random : forged);
    ASSERT_FALSE(r.ok());
    if (i >= 100) {
      ASSERT_EQ(r.status().code(), Status::Code::kUnauthenticated) << i;
    }
  }
  EXPECT_GE(keys_->unknown_without_read(), 900u);
  EXPECT_TRUE(keys_->Authenticate(k->secret).ok()) << "the real one is cached";
}

TEST_P(UnknownKeysTest, KeysWithoutASignatureStoredBeforeStartStillWork) {
  // A key from before signing (or DROVER_BOOTSTRAP_TOKEN): any secret, stored by its hash.
  std::promise<Result<NewKey>> p;
  keys_->CreateWithSecret({"old", Role::kUser, "default", {}, {}}, "an-old-style-secret-123",
                          [&](Result<NewKey> r) { p.set_value(std::move(r)); });
  ASSERT_TRUE(p.get_future().get().ok());
  Rebuild();  // a server starting now loads the stored keys' hashes
  auto r = keys_->Authenticate("an-old-style-secret-123");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)->key_name, "old");
}

TEST_P(UnknownKeysTest, ARevokedKeyInUseIsRefusedFromMemoryAfterOneRead) {
  Rebuild();
  auto k = Create(admin_, {"ci", Role::kUser, "", {}, {}});
  ASSERT_TRUE(k.ok());
  ASSERT_TRUE(Delete(admin_, k->record.id).ok());
  auto first = keys_->Authenticate(k->secret);
  EXPECT_EQ(first.status().code(), Status::Code::kUnauthenticated);
  faulty_->fail_reads = true;
  auto again = keys_->Authenticate(k->secret);
  EXPECT_EQ(again.status().code(), Status::Code::kUnauthenticated) << "no read: remembered";
}

TEST_P(UnknownKeysTest, EveryServerOnTheDatabaseSignsWithTheSameSecret) {
  Rebuild();
  auto k = Create(admin_, {"ci", Role::kUser, "", {}, {}});
  ASSERT_TRUE(k.ok());
  KeyService other(*store_, clock_);  // another server's
  EXPECT_TRUE(other.Authenticate(k->secret).ok());
  EXPECT_EQ(other.unknown_without_read(), 0u);
}

TEST_P(UnknownKeysTest, WhileTheStoreFailsAKeyCachedBeforeStillWorks) {
  Rebuild();
  auto k = Create(admin_, {"ci", Role::kUser, "", {}, {}});
  ASSERT_TRUE(k.ok());
  ASSERT_TRUE(keys_->Authenticate(k->secret).ok());  // cached
  clock_.Advance(std::chrono::seconds(6));           // past the cache time
  faulty_->fail_reads = true;
  auto r = keys_->Authenticate(k->secret);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)->key_id, k->record.id);
  // A key never seen is not guessed at.
  auto other = Create(admin_, {"other", Role::kUser, "", {}, {}});
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(keys_->Authenticate(other->secret).status().code(), Status::Code::kUnavailable);
  // A revocation empties the cache: nothing stale is left to stand.
  keys_->Revoked();
  EXPECT_EQ(keys_->Authenticate(k->secret).status().code(), Status::Code::kUnavailable);
}

}  // namespace
}  // namespace drover::auth
