#include "http/router.h"

#include <gtest/gtest.h>

namespace drover::http {
namespace {

Handler Noop() {
  return [](Request&, Responder) {};
}

TEST(Router, LiteralsParamsAndMethods) {
  Router r;
  r.Add(Method::kGet, "/v1/variables", Access::kAny, Noop());
  r.Add(Method::kGet, "/v1/variables/{key}", Access::kAny, Noop());
  r.Add(Method::kPut, "/v1/variables/{key}", Access::kAny, Noop());
  r.Add(Method::kGet, "/healthz", Access::kPublic, Noop());

  auto m = r.Find(Method::kGet, "/v1/variables/cc-a-ref");
  ASSERT_EQ(m.kind, Match::kFound);
  EXPECT_EQ(m.route, 1);
  ASSERT_EQ(m.params.size(), 1u);
  EXPECT_EQ(m.params[0].first, "key");
  EXPECT_EQ(m.params[0].second, "cc-a-ref");

  EXPECT_EQ(r.Find(Method::kPut, "/v1/variables/x").route, 2);
  EXPECT_EQ(r.Find(Method::kGet, "/v1/variables").route, 0);
  EXPECT_EQ(r.Find(Method::kHead, "/healthz").route, 3) << "HEAD is served by GET";

  auto bad = r.Find(Method::kDelete, "/v1/variables/x");
  EXPECT_EQ(bad.kind, Match::kMethodNotAllowed);
  EXPECT_EQ(bad.allowed, "GET, PUT");
  EXPECT_EQ(r.Find(Method::kGet, "/v1/nothing").kind, Match::kNotFound);
  EXPECT_EQ(r.Find(Method::kGet, "/v1/variables/a/b").kind, Match::kNotFound);
  EXPECT_EQ(r.Find(Method::kGet, "").kind, Match::kNotFound);
}

TEST(Router, PercentDecodesParams) {
  Router r;
  r.Add(Method::kGet, "/v1/keys/{id}", Access::kAny, Noop());
  auto m = r.Find(Method::kGet, "/v1/keys/a%2Db");
  ASSERT_EQ(m.kind, Match::kFound);
  EXPECT_EQ(m.params[0].second, "a-b");
  EXPECT_EQ(r.Find(Method::kGet, "/v1/keys/%zz").kind, Match::kNotFound);
}

TEST(Router, DuplicateRoutesAreABug) {
  Router r;
  r.Add(Method::kGet, "/a/{x}", Access::kAny, Noop());
  EXPECT_THROW(r.Add(Method::kGet, "/a/{x}", Access::kAny, Noop()), std::logic_error);
  EXPECT_THROW(r.Add(Method::kPut, "/a/{y}", Access::kAny, Noop()), std::logic_error);
}

TEST(Request, QueryParamsAreDecoded) {
  Request req;
  req.query = "prefix=cc-a-&environment=sim%2Deu&flag&plus=a+b";
  EXPECT_EQ(req.Query("prefix"), "cc-a-");
  EXPECT_EQ(req.Query("environment"), "sim-eu");
  EXPECT_EQ(req.Query("flag"), "");
  EXPECT_EQ(req.Query("plus"), "a b");
  EXPECT_FALSE(req.Query("missing").has_value());
}

}  // namespace
}  // namespace drover::http
