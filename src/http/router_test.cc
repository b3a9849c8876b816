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

TEST(Router, CatchAllsMatchAfterExactRoutes) {
  Router r;
  r.Add(Method::kGet, "/svc/{route}/{*rest}", Access::kAny, Noop());        // 0
  r.Add(Method::kPost, "/svc/{route}/{*rest}", Access::kAny, Noop());       // 1
  r.Add(Method::kGet, "/ui/{*rest}", Access::kPublic, Noop());              // 2
  r.Add(Method::kGet, "/ui/exact", Access::kPublic, Noop());                // 3
  r.Add(Method::kPut, "/ui/only-put", Access::kPublic, Noop());             // 4
  r.Add(Method::kGet, "/env/{environment}/{*rest}", Access::kAny, Noop());  // 5
  r.Add(Method::kGet, "/env/{environment}/status", Access::kAny, Noop());   // 6

  auto m = r.Find(Method::kGet, "/svc/api/a/b%20c");
  ASSERT_EQ(m.kind, Match::kFound);
  EXPECT_EQ(m.route, 0);
  ASSERT_EQ(m.params.size(), 2u);
  EXPECT_EQ(m.params[0].second, "api");
  EXPECT_EQ(m.params[1].first, "rest");
  EXPECT_EQ(m.params[1].second, "/a/b%20c") << "the rest is passed on raw";
  EXPECT_EQ(r.Find(Method::kPost, "/svc/api/x").route, 1);
  EXPECT_EQ(r.Find(Method::kGet, "/svc/api").params[1].second, "");
  EXPECT_EQ(r.Find(Method::kGet, "/svc/api/").params[1].second, "/");
  EXPECT_EQ(r.Find(Method::kGet, "/svc/api//x").params[1].second, "//x");
  EXPECT_EQ(r.Find(Method::kGet, "/svc").kind, Match::kNotFound);
  auto no = r.Find(Method::kDelete, "/svc/api/x");
  EXPECT_EQ(no.kind, Match::kMethodNotAllowed);
  EXPECT_EQ(no.allowed, "GET, POST");

  EXPECT_EQ(r.Find(Method::kGet, "/ui/exact").route, 3) << "exact routes win";
  EXPECT_EQ(r.Find(Method::kGet, "/ui/exact/more").route, 2);
  EXPECT_EQ(r.Find(Method::kGet, "/ui/only-put").route, 2) << "GET falls back to the catch-all";
  EXPECT_EQ(r.Find(Method::kPut, "/ui/only-put").route, 4);
  EXPECT_EQ(r.Find(Method::kGet, "/ui").params[0].second, "");
  EXPECT_EQ(r.Find(Method::kGet, "/ui/%zz").params[0].second, "/%zz");
  EXPECT_EQ(r.Find(Method::kHead, "/ui/app.js").route, 2);

  EXPECT_EQ(r.Find(Method::kGet, "/env/web/status").route, 6);
  auto env = r.Find(Method::kGet, "/env/web/status/x");
  EXPECT_EQ(env.route, 5);
  ASSERT_EQ(env.params.size(), 2u) << "parameters of a longer failed try are dropped";
  EXPECT_EQ(env.params[0].second, "web");
  EXPECT_EQ(env.params[1].second, "/status/x");
}

TEST(Router, CatchAllMustBeLast) {
  Router r;
  EXPECT_THROW(r.Add(Method::kGet, "/a/{*rest}/b", Access::kAny, Noop()), std::logic_error);
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
