#include "gateway/route_spec.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace drover::gateway {
namespace {

Result<RouteSpec> Parse(std::string_view text, std::string_view name = "api") {
  return ParseRouteDocument(boost::json::parse(text), name);
}

// The field errors of a refused spec, "field: message" each.
std::vector<std::string> Errors(std::string_view text) {
  auto r = Parse(text);
  EXPECT_FALSE(r.ok());
  std::vector<std::string> out;
  for (const auto& e : r.status().errors()) out.push_back(e.field);
  return out;
}

TEST(RouteSpec, DefaultsAndFields) {
  auto s = Parse(R"({"upstreams": ["http://10.0.0.5:8080/base/", "http://svc"]})");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  ASSERT_EQ(s->upstreams.size(), 2u);
  EXPECT_EQ(s->upstreams[0].host, "10.0.0.5");
  EXPECT_EQ(s->upstreams[0].port, 8080);
  EXPECT_EQ(s->upstreams[0].base, "/base");
  EXPECT_EQ(s->upstreams[1].port, 80);
  EXPECT_EQ(s->upstreams[1].base, "");
  EXPECT_TRUE(s->auth_required);
  EXPECT_TRUE(s->strip_prefix);
  EXPECT_EQ(s->timeout.count(), 30000);
  EXPECT_EQ(s->retries, 1);
  EXPECT_EQ(s->balance, Balance::kRoundRobin);
  EXPECT_FALSE(s->rate_limit);

  s = Parse(R"({"kind": "Route", "name": "api", "spec": {"environment": "web", "auth": "none",
      "strip_prefix": false, "timeout": "5s", "connect_timeout": "200ms", "per_try_timeout": 2,
      "retries": 3, "rate_limit": {"rps": 10}, "balance": "hash", "hash_on": {"cookie": "sid"},
      "eject_after": 2, "eject_for": "10s"}})");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->environment, "web");
  EXPECT_FALSE(s->auth_required);
  EXPECT_FALSE(s->strip_prefix);
  EXPECT_EQ(s->timeout.count(), 5000);
  EXPECT_EQ(s->connect_timeout.count(), 200);
  EXPECT_EQ(s->per_try_timeout.count(), 2000);
  EXPECT_EQ(s->retries, 3);
  ASSERT_TRUE(s->rate_limit);
  EXPECT_EQ(s->rate_limit->rps, 10);
  EXPECT_EQ(s->rate_limit->burst, 10);  // defaults to rps
  EXPECT_EQ(s->hash_cookie, "sid");
  EXPECT_EQ(s->eject_after, 2);
}

TEST(RouteSpec, FieldErrors) {
  using V = std::vector<std::string>;
  EXPECT_EQ(Errors(R"({})"), V{"upstreams"});
  EXPECT_EQ(Errors(R"({"upstreams": []})"), V{"upstreams"});
  EXPECT_EQ(Errors(R"({"upstreams": ["http://a"], "environment": "e"})"), V{"environment"});
  EXPECT_EQ(Errors(R"({"upstreams": ["https://a", "ftp://b", "http://u@h", "http://h:0",
      "http://h:70000", "http://h/x?y", "http://a b", 5]})"),
            (V{"upstreams[0]", "upstreams[1]", "upstreams[2]", "upstreams[3]", "upstreams[4]",
               "upstreams[5]", "upstreams[6]", "upstreams[7]"}));
  EXPECT_EQ(Errors(R"({"upstreams": ["http://a"], "auth": "maybe", "timeout": "soon",
      "retries": 9, "balance": "random", "rate_limit": {"rps": 0}, "bogus": 1})"),
            (V{"rate_limit.rps", "auth", "timeout", "retries", "balance", "bogus"}));
  EXPECT_EQ(Errors(R"({"upstreams": ["http://a"], "hash_on": {"header": "X"}})"), V{"hash_on"});
  EXPECT_EQ(
      Errors(R"({"upstreams": ["http://a"], "balance": "hash", "hash_on": {"header": "a b"}})"),
      V{"hash_on.header"});
  EXPECT_EQ(Errors(R"({"upstreams": ["http://a"], "auth": "none", "roles": ["user"]})"),
            V{"roles"});
  EXPECT_EQ(Errors(R"({"upstreams": ["http://a"], "roles": ["root"]})"), V{"roles"});
  EXPECT_EQ(Errors(R"({"kind": "Queue", "spec": {"upstreams": ["http://a"]}})"), V{"kind"});
  EXPECT_FALSE(Parse("[1]").ok());
}

}  // namespace
}  // namespace drover::gateway
