#include "agent/cc_source.h"

#include <fmt/format.h>
#include <strings.h>

#include <boost/json.hpp>
#include <ctime>

#include "common/clock.h"
#include "common/random.h"

namespace drover::agent {

std::pair<std::string, std::string> SplitUrl(const std::string& url) {
  auto scheme = url.find("://");
  auto path = url.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  if (path == std::string::npos) return {url, "/"};
  return {url.substr(0, path), url.substr(path)};
}

CcSource::CcSource(std::vector<std::string> urls, std::string environment,
                   std::shared_ptr<const control::VerifyKey> verify)
    : environment_(std::move(environment)), verify_(std::move(verify)), urls_(std::move(urls)) {}

void CcSource::SetToken(std::string token) {
  std::lock_guard lock(mu_);
  token_ = std::move(token);
  endpoints_.clear();  // clients carry the token: make them anew
}

void CcSource::Interrupt() {
  std::lock_guard lock(mu_);
  interrupted_ = true;
  for (auto& e : endpoints_) e.client->Interrupt();
}

Status CcSource::Verify(const client::Response& r, SignedMark& mark, int64_t* index) const {
  std::string header = r.Header("X-Drover-Signature");
  if (header.empty()) return Status::PermissionDenied("refused: the set is not signed");
  auto h = control::ParseSignatureHeader(header);
  if (!h) return Status::PermissionDenied("refused: malformed X-Drover-Signature");
  if (!verify_->Verify(control::SignedMessage("agent", environment_, h->index, h->expires, r.body),
                       h->sig)) {
    return Status::PermissionDenied("refused: the signature does not match the set (tampered?)");
  }
  if (h->expires < ToUnixMillis(SystemClock::Get().Now()) / 1000) {
    return Status::PermissionDenied("refused: the signed set has expired");
  }
  std::string digest = Sha256Hex(r.body);
  if (h->index < mark.index && digest != mark.digest) {
    return Status::PermissionDenied(fmt::format(
        "refused: a replayed older set (index {} < {} already accepted)", h->index, mark.index));
  }
  if (h->index >= mark.index) mark = {h->index, digest};
  *index = h->index;
  return Status::Ok();
}

Result<FetchedSet> CcSource::Fetch(SignedMark& mark, std::optional<int64_t> wait_index,
                                   std::chrono::milliseconds wait) {
  std::vector<Endpoint*> order;
  {
    std::lock_guard lock(mu_);
    if (interrupted_) return Status::Unavailable("stopping");
    if (endpoints_.empty()) {
      for (const auto& url : urls_) {
        Endpoint e;
        e.url = url;
        std::tie(e.addr, e.target) = SplitUrl(url);
        client::Options o;
        o.addr = e.addr;
        o.token = token_;
        o.timeout = std::chrono::seconds(15);
        e.client = std::make_unique<client::Client>(o);
        endpoints_.push_back(std::move(e));
      }
    }
    for (auto& e : endpoints_) order.push_back(&e);
  }
  std::vector<std::string> failures;
  for (auto* e : order) {
    std::string target = e->target;
    if (wait_index) {
      target += target.find('?') == std::string::npos ? "?" : "&";
      target += fmt::format("index={}&wait={}ms", *wait_index, wait.count());
    }
    // A blocking query may take `wait`; give the request that long and then some.
    e->client->set_timeout(std::chrono::seconds(15) +
                           (wait_index ? wait : std::chrono::milliseconds(0)));
    auto r = e->client->Do("GET", target, {}, {});
    if (!r.ok()) {
      failures.push_back(fmt::format("{}: {}", e->url, r.status().message()));
      continue;
    }
    if (r->status >= 500 || r->status == 429) {
      failures.push_back(fmt::format("{}: HTTP {}", e->url, r->status));
      continue;
    }
    if (!r->ok()) {
      failures.push_back(fmt::format("{}: {}", e->url, client::Client::ToStatus(*r).message()));
      continue;
    }
    FetchedSet set;
    set.endpoint = e->url;
    set.digest = Sha256Hex(r->body);
    if (auto idx = r->Header("X-Drover-Index"); !idx.empty()) set.index = std::atoll(idx.c_str());
    if (verify_) {
      int64_t signed_index = 0;
      DROVER_RETURN_IF_ERROR(Verify(*r, mark, &signed_index));
      set.is_signed = true;
      set.index = signed_index;
    }
    boost::system::error_code ec;
    auto json = r->body.empty() ? boost::json::value() : boost::json::parse(r->body, ec);
    if (!ec && json.is_object()) {
      for (const auto& [k, v] : json.as_object()) {
        if (!std::string_view(k).starts_with("cc-a-")) continue;
        set.vars[std::string(k)] =
            v.is_string() ? std::string(v.as_string()) : boost::json::serialize(v);
      }
    } else if (verify_) {
      return Status::PermissionDenied("refused: a signed set must be a JSON object");
    } else {
      // Any endpoint that sets cc-a-* headers (a CDN rule, a static file server).
      for (const auto& [k, v] : r->headers) {
        if (k.size() > 5 && strncasecmp(k.c_str(), "cc-a-", 5) == 0) {
          std::string key = k;
          for (auto& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
          set.vars[key] = v;
        }
      }
    }
    return set;
  }
  std::string why;
  for (const auto& f : failures) why += (why.empty() ? "" : "; ") + f;
  return Status::Unavailable("no control-center endpoint answered: " + why);
}

}  // namespace drover::agent
