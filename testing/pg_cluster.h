#pragma once
// A real, private PostgreSQL cluster for tests: initdb + pg_ctl in a temp dir, listening on a
// free loopback port. Tests share one cluster per ctest run (started by the `pg_cluster` CTest
// fixture, found through DROVER_TEST_PG_FILE) and each gets a fresh database; a test binary run
// on its own starts a cluster for the process instead. Tests that restart PostgreSQL start a
// cluster of their own.
#include <memory>
#include <string>

#include "common/status.h"

namespace drover::testing {

class PgCluster {
 public:
  // Creates and starts a cluster in `dir` (created; must not hold one yet).
  static Result<std::unique_ptr<PgCluster>> Start(const std::string& dir);
  // The cluster for this test run (see above); aborts the test run if it cannot start.
  static PgCluster& Shared();
  ~PgCluster();  // stops the cluster if this object started it

  // postgres://postgres@127.0.0.1:PORT/DB
  std::string Url(const std::string& db) const;
  // A new empty database with a unique name; returns its URL.
  std::string NewDatabase();
  // Stops (fast: connections are cut) and starts the cluster again on the same port.
  // Stops the server: a fast shutdown (checkpoint, data kept for a restart), or an immediate
  // one for a cluster whose data is about to be deleted (no checkpoint to wait for).
  Status Stop(bool keep_data = true);
  Status Restart();
  int port() const { return port_; }

 private:
  friend int PgClusterToolMain(int argc, char** argv);
  PgCluster() = default;
  std::string dir_;
  int port_ = 0;
  bool owned_ = false;  // started by this object: stopped by its destructor
};

// For the CTest fixture: `pg_cluster_tool start DIR` writes DIR/url; `stop DIR` stops it.
int PgClusterToolMain(int argc, char** argv);

}  // namespace drover::testing
