#include "client/client.h"

#include <gtest/gtest.h>

namespace drover::client {
namespace {

Response Make(int status, std::string body) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  r.headers = {{"Content-Type", "application/problem+json"}};
  return r;
}

TEST(ClientStatus, ProblemDetailAndFieldErrorsAreKept) {
  auto s = Client::ToStatus(Make(
      422,
      R"({"type":"about:blank","title":"Unprocessable Content","status":422,)"
      R"("detail":"validation failed","errors":[{"field":"value","message":"must be a string"}]})"));
  EXPECT_EQ(s.code(), Status::Code::kValidation);
  EXPECT_EQ(s.message(), "validation failed (HTTP 422)");
  ASSERT_EQ(s.errors().size(), 1u);
  EXPECT_EQ(s.errors()[0], (FieldError{"value", "must be a string"}));
}

TEST(ClientStatus, StatusCodesMapToCodes) {
  EXPECT_TRUE(Client::ToStatus(Make(204, "")).ok());
  EXPECT_EQ(Client::ToStatus(Make(401, "{}")).code(), Status::Code::kUnauthenticated);
  EXPECT_EQ(Client::ToStatus(Make(403, "{}")).code(), Status::Code::kPermissionDenied);
  EXPECT_TRUE(Client::ToStatus(Make(404, "{}")).IsNotFound());
  EXPECT_EQ(Client::ToStatus(Make(429, "{}")).code(), Status::Code::kResourceExhausted);
  EXPECT_TRUE(Client::ToStatus(Make(503, "{}")).IsUnavailable());
  EXPECT_EQ(Client::ToStatus(Make(500, "{}")).code(), Status::Code::kInternal);
  EXPECT_EQ(Client::ToStatus(Make(400, "{}")).code(), Status::Code::kInvalidArgument);
}

TEST(ClientStatus, BodiesThatAreNotProblemsStillGiveTheStatus) {
  EXPECT_EQ(Client::ToStatus(Make(502, "<html>bad gateway</html>")).message(), "HTTP 502");
  EXPECT_EQ(Client::ToStatus(Make(404, R"({"title":"Not Found"})")).message(),
            "Not Found (HTTP 404)");
}

TEST(ClientResponse, HeaderLookupIgnoresCase) {
  auto r = Make(200, "");
  EXPECT_EQ(r.Header("content-type"), "application/problem+json");
  EXPECT_EQ(r.Header("X-Missing"), "");
}

TEST(Client, UnreachableServerIsUnavailable) {
  Client c({"http://127.0.0.1:1", "", std::chrono::milliseconds(2000)});
  auto r = c.Do("GET", "/healthz");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsUnavailable());
  EXPECT_NE(r.status().message().find("cannot connect"), std::string::npos);
}

}  // namespace
}  // namespace drover::client
