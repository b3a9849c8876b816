// The checked-in OpenAPI document describes every route the router serves, and nothing more.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <set>

#include "api/app.h"
#include "testing/store_fixture.h"

namespace drover::api {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(c));
  return out;
}

TEST(OpenApi, EveryRouteIsDocumentedAndEveryDocumentedRouteExists) {
  testing::TempDir dir;
  auto store = testing::OpenTestStore(dir);
  ASSERT_TRUE(store);
  App app(*store, SystemClock::Get(), {});

  auto doc = boost::json::parse(OpenApiDocument());
  ASSERT_EQ(doc.at("openapi").as_string(), "3.1.0");
  std::set<std::string> documented;
  for (const auto& [path, item] : doc.at("paths").as_object()) {
    for (const auto& [method, op] : item.as_object()) {
      if (method == "parameters") continue;
      documented.insert(Lower(method) + " " + std::string(path));
    }
  }
  std::set<std::string> served;
  for (const auto& r : app.router().routes()) {
    // A catch-all {*rest} is a plain {rest} parameter in OpenAPI's path syntax.
    std::string pattern = r.pattern;
    if (auto star = pattern.find("{*"); star != std::string::npos) pattern.erase(star + 1, 1);
    served.insert(Lower(http::MethodName(r.method)) + " " + pattern);
  }
  for (const auto& s : served) EXPECT_TRUE(documented.contains(s)) << "undocumented route: " << s;
  for (const auto& d : documented)
    EXPECT_TRUE(served.contains(d)) << "documented, not served: " << d;
}

}  // namespace
}  // namespace drover::api
