#pragma once
// Where an agent reads its cc-a-* set: one or more HTTP endpoints, tried in order (the first that
// answers wins). A drover server answers with a JSON object and X-Drover-Index, and supports
// blocking queries; any other endpoint may just set `cc-a-*` response headers. With a verify
// key only signed sets are accepted (signing.h), and never one older than a set already
// accepted unless it is the same set.
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "client/client.h"
#include "common/status.h"
#include "control/signing.h"

namespace drover::agent {

struct FetchedSet {
  std::map<std::string, std::string> vars;
  int64_t index = 0;  // X-Drover-Index; 0 when the endpoint sends none
  std::string endpoint;
  std::string digest;  // SHA-256 hex of the body
  bool is_signed = false;
};

// The newest signed set accepted so far (persisted by the caller).
struct SignedMark {
  int64_t index = 0;
  std::string digest;
};

class CcSource {
 public:
  // `urls`: full endpoint URLs (http://host:port/path?query). `environment` names the set in
  // signatures.
  CcSource(std::vector<std::string> urls, std::string environment,
           std::shared_ptr<const control::VerifyKey> verify);

  void SetToken(std::string token);

  // Reads the set. With `wait_index`, a blocking query: returns once the set's index passed it
  // or `wait` ended (drover endpoints; others answer at once). Unavailable when no endpoint
  // answered; PermissionDenied when the answer fails verification ("refused: ...").
  Result<FetchedSet> Fetch(SignedMark& mark, std::optional<int64_t> wait_index = std::nullopt,
                           std::chrono::milliseconds wait = {});

  // Ends a Fetch in progress and every later one (on stop). Thread-safe.
  void Interrupt();

  bool empty() const { return urls_.empty(); }

 private:
  struct Endpoint {
    std::string url, addr, target;
    std::unique_ptr<client::Client> client;
  };
  Status Verify(const client::Response& r, SignedMark& mark, int64_t* index) const;

  std::string environment_;
  std::shared_ptr<const control::VerifyKey> verify_;
  std::string token_;
  std::vector<std::string> urls_;
  std::mutex mu_;  // guards endpoints_ creation and Interrupt
  std::vector<Endpoint> endpoints_;
  bool interrupted_ = false;
};

// Splits "http://host:port/path?q" into ("http://host:port", "/path?q").
std::pair<std::string, std::string> SplitUrl(const std::string& url);

}  // namespace drover::agent
