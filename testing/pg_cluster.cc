#include "testing/pg_cluster.h"

#include <fmt/format.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <vector>

#include "common/files.h"
#include "common/random.h"

namespace drover::testing {
namespace {

namespace fs = std::filesystem;

std::string PgBin() {
  for (int v : {17, 16, 15, 14}) {
    std::string dir = fmt::format("/usr/lib/postgresql/{}/bin", v);
    if (fs::exists(dir + "/pg_ctl")) return dir;
  }
  return "/usr/lib/postgresql/15/bin";
}

int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// Runs a PostgreSQL program; as root, as the `postgres` user (initdb and postgres refuse root).
Status RunPg(std::vector<std::string> args, const std::string& log) {
  if (::geteuid() == 0) args.insert(args.begin(), {"runuser", "-u", "postgres", "--"});
  pid_t pid = ::fork();
  if (pid == 0) {
    FILE* f = std::fopen(log.c_str(), "a");
    if (f) {
      ::dup2(fileno(f), 1);
      ::dup2(fileno(f), 2);
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execvp(argv[0], argv.data());
    std::_Exit(127);
  }
  int st = 0;
  ::waitpid(pid, &st, 0);
  if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return Status::Ok();
  std::ifstream in(log);
  std::string text((std::istreambuf_iterator<char>(in)), {});
  return Status::Unavailable(fmt::format("{} failed: {}", args[args[0] == "runuser" ? 4 : 0],
                                         text.substr(text.size() > 2000 ? text.size() - 2000 : 0)));
}

// Gives the postgres user the directory (and a way through its parents) when we are root.
void HandOver(const std::string& dir) {
  if (::geteuid() != 0) return;
  passwd* pw = ::getpwnam("postgres");
  if (!pw) return;
  for (fs::path p = fs::path(dir).parent_path(); p != p.root_path(); p = p.parent_path()) {
    struct stat st {};
    if (::stat(p.c_str(), &st) == 0) ::chmod(p.c_str(), st.st_mode | S_IXOTH);
  }
  (void)!::chown(dir.c_str(), pw->pw_uid, pw->pw_gid);
}

Status Exec(const std::string& url, const std::string& sql) {
  PGconn* c = PQconnectdb(url.c_str());
  Status s;
  if (PQstatus(c) != CONNECTION_OK) {
    s = Status::Unavailable(PQerrorMessage(c));
  } else {
    PGresult* r = PQexec(c, sql.c_str());
    if (PQresultStatus(r) != PGRES_COMMAND_OK) s = Status::Unavailable(PQresultErrorMessage(r));
    PQclear(r);
  }
  PQfinish(c);
  return s;
}

}  // namespace

Result<std::unique_ptr<PgCluster>> PgCluster::Start(const std::string& dir) {
  std::unique_ptr<PgCluster> c(new PgCluster());
  c->dir_ = dir;
  c->port_ = FreePort();
  fs::create_directories(dir);
  HandOver(dir);
  std::string bin = PgBin();
  auto s = RunPg({bin + "/initdb", "-D", dir + "/data", "-A", "trust", "-U", "postgres",
                  "--locale=C.UTF-8", "-E", "UTF8", "--no-sync"},
                 dir + "/initdb.log");
  if (!s.ok()) return s;
  std::ofstream(dir + "/port") << c->port_;
  c->owned_ = true;
  DROVER_RETURN_IF_ERROR(c->Restart());
  return c;
}

Status PgCluster::Restart() {
  std::string opts = fmt::format(
      "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=400 -c fsync=on", port_, dir_);
  return RunPg({PgBin() + "/pg_ctl", "-D", dir_ + "/data", "-l", dir_ + "/server.log", "-o", opts,
                "-w", "-t", "60", "start"},
               dir_ + "/pg_ctl.log");
}

Status PgCluster::Stop(bool keep_data) {
  // A shutdown checkpoint of a cluster that hundreds of tests wrote to can take a minute on a
  // busy disk; a cluster being thrown away needs none.
  return RunPg({PgBin() + "/pg_ctl", "-D", dir_ + "/data", "-m", keep_data ? "fast" : "immediate",
                "-w", "-t", "60", "stop"},
               dir_ + "/pg_ctl.log");
}

PgCluster::~PgCluster() {
  if (owned_) {
    (void)Stop(/*keep_data=*/false);
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
}

std::string PgCluster::Url(const std::string& db) const {
  return fmt::format("postgres://postgres@127.0.0.1:{}/{}", port_, db);
}

std::string PgCluster::NewDatabase() {
  static std::atomic<int> n{0};
  std::string db = fmt::format("t_{}_{}", ::getpid(), ++n);
  Status s = Exec(Url("postgres"), "CREATE DATABASE " + db + " TEMPLATE template0");
  if (!s.ok()) {
    std::cerr << "cannot create test database: " << s.ToString() << "\n";
    std::abort();
  }
  return Url(db);
}

PgCluster& PgCluster::Shared() {
  static std::unique_ptr<PgCluster> shared = [] {
    const char* file = std::getenv("DROVER_TEST_PG_FILE");
    if (file) {
      std::ifstream in(file);
      int port = 0;
      if (in >> port && port > 0) {
        std::unique_ptr<PgCluster> c(new PgCluster());
        c->port_ = port;
        return c;
      }
    }
    // A fresh directory of our own (create_directory fails if the name is taken).
    std::string dir = (fs::temp_directory_path() / ("drover-pg." + RandomHex(8))).string();
    if (std::error_code ec; !fs::create_directory(dir, ec)) {
      std::cerr << "cannot create " << dir << "\n";
      std::abort();
    }
    auto c = Start(dir);
    if (!c.ok()) {
      std::cerr << "cannot start a test PostgreSQL cluster: " << c.status().ToString() << "\n";
      std::abort();
    }
    return std::move(*c);
  }();
  return *shared;
}

int PgClusterToolMain(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: pg_cluster_tool start|stop DIR\n";
    return 2;
  }
  std::string cmd = argv[1], dir = argv[2];
  if (cmd == "start") {
    std::error_code ec;
    if (fs::exists(dir + "/data/postmaster.pid")) {
      (void)RunPg({PgBin() + "/pg_ctl", "-D", dir + "/data", "-m", "immediate", "stop"},
                  "/dev/null");
    }
    fs::remove_all(dir, ec);
    auto c = PgCluster::Start(dir);
    if (!c.ok()) {
      std::cerr << c.status().ToString() << "\n";
      return 1;
    }
    (*c)->owned_ = false;  // keeps running for the tests; `stop` ends it
    std::cout << (*c)->Url("postgres") << "\n";
    return 0;
  }
  if (cmd == "stop") {
    PgCluster c;
    c.dir_ = dir;
    Status s = c.Stop(/*keep_data=*/false);
    if (!s.ok()) {
      std::cerr << "stopping the test cluster: " << s.ToString() << "\n"
                << ReadFile(dir + "/pg_ctl.log").value_or("") << "\n";
    }
    std::error_code ec;
    fs::remove_all(dir, ec);
    return s.ok() ? 0 : 1;
  }
  std::cerr << "unknown command " << cmd << "\n";
  return 2;
}

}  // namespace drover::testing
