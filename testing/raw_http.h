#pragma once
// Plain loopback sockets for tests that need what an HTTP client library hides: raw bytes on
// the wire, a stream read as it arrives, a client that vanishes mid-request.
#include <chrono>
#include <string>
#include <string_view>

#include "testing/test_server.h"

namespace drover::testing {

// The port of a started server.
int PortOf(const TestServer& s);

// A plain TCP connection to 127.0.0.1:port (-1 and a test failure when it cannot connect).
int ConnectTo(int port);

// Writes all of `bytes`; false when the peer stopped reading or closed.
bool WriteAll(int fd, std::string_view bytes);

// Reads into `*got` until it contains `needle`, the peer closes, or `timeout` passes; true when
// the needle arrived.
bool ReadUntil(int fd, std::string* got, std::string_view needle,
               std::chrono::milliseconds timeout = std::chrono::seconds(60));

// Sends raw bytes on a new connection and returns everything the server sends back until it
// closes the connection.
std::string RawExchange(int port, const std::string& bytes);

}  // namespace drover::testing
