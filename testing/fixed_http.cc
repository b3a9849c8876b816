#include "testing/fixed_http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace drover::testing {

FixedHttp::FixedHttp() {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::listen(listen_fd_, 16);
  socklen_t len = sizeof a;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
  port_ = ntohs(a.sin_port);
  Set({}, "");
  thread_ = std::thread([this] { Loop(); });
}

FixedHttp::~FixedHttp() {
  stop_ = true;
  thread_.join();
  ::close(listen_fd_);
}

void FixedHttp::Set(std::vector<std::pair<std::string, std::string>> headers, std::string body) {
  std::string r = "HTTP/1.1 200 OK\r\nConnection: close\r\n";
  for (const auto& [k, v] : headers) r += k + ": " + v + "\r\n";
  r += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  std::lock_guard lock(mu_);
  response_ = std::move(r);
}

void FixedHttp::FailNext(std::vector<int> statuses) {
  std::lock_guard lock(mu_);
  failures_.assign(statuses.begin(), statuses.end());
}

void FixedHttp::SetDelay(std::chrono::milliseconds d) {
  std::lock_guard lock(mu_);
  delay_ = d;
}

std::string FixedHttp::last_request() const {
  std::lock_guard lock(mu_);
  return last_request_;
}

std::string FixedHttp::url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(port_) + path;
}

void FixedHttp::Loop() {
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    std::string req;
    char buf[4096];
    while (req.find("\r\n\r\n") == std::string::npos) {
      pollfd q{fd, POLLIN, 0};
      if (::poll(&q, 1, 2000) <= 0) break;
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n <= 0) break;
      req.append(buf, static_cast<size_t>(n));
    }
    // The body too, when the head says how long it is.
    size_t head_end = req.find("\r\n\r\n");
    size_t want = 0;
    if (size_t cl = req.find("Content-Length: ");
        cl != std::string::npos && head_end != std::string::npos) {
      want = std::stoul(req.substr(cl + 16));
    }
    while (head_end != std::string::npos && req.size() < head_end + 4 + want) {
      pollfd q{fd, POLLIN, 0};
      if (::poll(&q, 1, 2000) <= 0) break;
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n <= 0) break;
      req.append(buf, static_cast<size_t>(n));
    }
    std::string resp;
    std::chrono::milliseconds delay{0};
    {
      std::lock_guard lock(mu_);
      last_request_ = req;
      delay = delay_;
      if (!failures_.empty()) {
        resp = "HTTP/1.1 " + std::to_string(failures_.front()) +
               " Failed\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
        failures_.pop_front();
      } else {
        resp = response_;
      }
    }
    ++requests_;
    if (delay.count() > 0) {
      // In slices, so a stopping endpoint does not wait the whole delay.
      for (auto left = delay; left.count() > 0 && !stop_; left -= std::chrono::milliseconds(50)) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    }
    size_t off = 0;
    while (off < resp.size()) {
      ssize_t n = ::write(fd, resp.data() + off, resp.size() - off);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
    ::close(fd);
  }
}

}  // namespace drover::testing
