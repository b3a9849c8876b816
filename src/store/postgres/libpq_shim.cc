// Forwarders for the libpq functions drover calls, resolved in the library that LoadLibPq()
// loads (see libpq_shim.h). Signatures come from libpq-fe.h, so the compiler checks each one.
#include "store/postgres/libpq_shim.h"

#include <dlfcn.h>
#include <libpq-fe.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <type_traits>

namespace drover::store::postgres {
namespace {

void* g_lib = nullptr;
std::once_flag g_once;
std::string g_error;

void Load() {
  for (const char* name : {"libpq.so.5", "libpq.so"}) {
    g_lib = ::dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (g_lib) return;
  }
  const char* e = ::dlerror();
  g_error = std::string("cannot load libpq (install the libpq5 package): ") + (e ? e : "");
}

}  // namespace

bool LoadLibPq(std::string* error) {
  std::call_once(g_once, Load);
  if (!g_lib && error) *error = g_error;
  return g_lib != nullptr;
}

// The address of `name` in the loaded libpq, looked up once per function (each forwarder keeps
// it in a static). Only reached after LoadLibPq() succeeded (a store opens a connection only
// then); anything else is a bug, so it aborts with the reason.
template <typename F>
F Fn(const char* name) {
  static_assert(std::is_pointer_v<F>);
  std::string error;
  if (!LoadLibPq(&error)) {
    std::fprintf(stderr, "drover: %s\n", error.c_str());
    std::abort();
  }
  void* f = ::dlsym(g_lib, name);
  if (!f) {
    std::fprintf(stderr, "drover: libpq has no %s (libpq 14 or newer is needed)\n", name);
    std::abort();
  }
  return reinterpret_cast<F>(f);
}

}  // namespace drover::store::postgres

using drover::store::postgres::Fn;

extern "C" {

ExecStatusType PQresultStatus(const PGresult* res) {
  static const auto f = Fn<decltype(&::PQresultStatus)>("PQresultStatus");
  return f(res);
}

int PQntuples(const PGresult* res) {
  static const auto f = Fn<decltype(&::PQntuples)>("PQntuples");
  return f(res);
}

char* PQgetvalue(const PGresult* res, int tup_num, int field_num) {
  static const auto f = Fn<decltype(&::PQgetvalue)>("PQgetvalue");
  return f(res, tup_num, field_num);
}

int PQgetlength(const PGresult* res, int tup_num, int field_num) {
  static const auto f = Fn<decltype(&::PQgetlength)>("PQgetlength");
  return f(res, tup_num, field_num);
}

PGresult* PQgetResult(PGconn* conn) {
  static const auto f = Fn<decltype(&::PQgetResult)>("PQgetResult");
  return f(conn);
}

ConnStatusType PQstatus(const PGconn* conn) {
  static const auto f = Fn<decltype(&::PQstatus)>("PQstatus");
  return f(conn);
}

void PQfreemem(void* ptr) {
  static const auto f = Fn<decltype(&::PQfreemem)>("PQfreemem");
  f(ptr);
}

void PQfinish(PGconn* conn) {
  static const auto f = Fn<decltype(&::PQfinish)>("PQfinish");
  f(conn);
}

PGresult* PQexec(PGconn* conn, const char* query) {
  static const auto f = Fn<decltype(&::PQexec)>("PQexec");
  return f(conn, query);
}

char* PQerrorMessage(const PGconn* conn) {
  static const auto f = Fn<decltype(&::PQerrorMessage)>("PQerrorMessage");
  return f(conn);
}

char* PQcmdStatus(PGresult* res) {
  static const auto f = Fn<decltype(&::PQcmdStatus)>("PQcmdStatus");
  return f(res);
}

void PQclear(PGresult* res) {
  static const auto f = Fn<decltype(&::PQclear)>("PQclear");
  f(res);
}

int PQsocket(const PGconn* conn) {
  static const auto f = Fn<decltype(&::PQsocket)>("PQsocket");
  return f(conn);
}

PQnoticeProcessor PQsetNoticeProcessor(PGconn* conn, PQnoticeProcessor proc, void* arg) {
  static const auto f = Fn<decltype(&::PQsetNoticeProcessor)>("PQsetNoticeProcessor");
  return f(conn, proc, arg);
}

int PQsendQueryPrepared(PGconn* conn, const char* stmtName, int nParams,
                        const char* const* paramValues, const int* paramLengths,
                        const int* paramFormats, int resultFormat) {
  static const auto f = Fn<decltype(&::PQsendQueryPrepared)>("PQsendQueryPrepared");
  return f(conn, stmtName, nParams, paramValues, paramLengths, paramFormats, resultFormat);
}

int PQsendQuery(PGconn* conn, const char* query) {
  static const auto f = Fn<decltype(&::PQsendQuery)>("PQsendQuery");
  return f(conn, query);
}

int PQsendPrepare(PGconn* conn, const char* stmtName, const char* query, int nParams,
                  const Oid* paramTypes) {
  static const auto f = Fn<decltype(&::PQsendPrepare)>("PQsendPrepare");
  return f(conn, stmtName, query, nParams, paramTypes);
}

int PQflush(PGconn* conn) {
  static const auto f = Fn<decltype(&::PQflush)>("PQflush");
  return f(conn);
}

int PQisBusy(PGconn* conn) {
  static const auto f = Fn<decltype(&::PQisBusy)>("PQisBusy");
  return f(conn);
}

char* PQresultErrorMessage(const PGresult* res) {
  static const auto f = Fn<decltype(&::PQresultErrorMessage)>("PQresultErrorMessage");
  return f(res);
}

char* PQresultErrorField(const PGresult* res, int fieldcode) {
  static const auto f = Fn<decltype(&::PQresultErrorField)>("PQresultErrorField");
  return f(res, fieldcode);
}

PGresult* PQprepare(PGconn* conn, const char* stmtName, const char* query, int nParams,
                    const Oid* paramTypes) {
  static const auto f = Fn<decltype(&::PQprepare)>("PQprepare");
  return f(conn, stmtName, query, nParams, paramTypes);
}

int PQpipelineSync(PGconn* conn) {
  static const auto f = Fn<decltype(&::PQpipelineSync)>("PQpipelineSync");
  return f(conn);
}

PGnotify* PQnotifies(PGconn* conn) {
  static const auto f = Fn<decltype(&::PQnotifies)>("PQnotifies");
  return f(conn);
}

int PQgetisnull(const PGresult* res, int tup_num, int field_num) {
  static const auto f = Fn<decltype(&::PQgetisnull)>("PQgetisnull");
  return f(res, tup_num, field_num);
}

int PQexitPipelineMode(PGconn* conn) {
  static const auto f = Fn<decltype(&::PQexitPipelineMode)>("PQexitPipelineMode");
  return f(conn);
}

PGresult* PQexecPrepared(PGconn* conn, const char* stmtName, int nParams,
                         const char* const* paramValues, const int* paramLengths,
                         const int* paramFormats, int resultFormat) {
  static const auto f = Fn<decltype(&::PQexecPrepared)>("PQexecPrepared");
  return f(conn, stmtName, nParams, paramValues, paramLengths, paramFormats, resultFormat);
}

char* PQescapeLiteral(PGconn* conn, const char* str, size_t len) {
  static const auto f = Fn<decltype(&::PQescapeLiteral)>("PQescapeLiteral");
  return f(conn, str, len);
}

int PQenterPipelineMode(PGconn* conn) {
  static const auto f = Fn<decltype(&::PQenterPipelineMode)>("PQenterPipelineMode");
  return f(conn);
}

int PQconsumeInput(PGconn* conn) {
  static const auto f = Fn<decltype(&::PQconsumeInput)>("PQconsumeInput");
  return f(conn);
}

PGconn* PQconnectdbParams(const char* const* keywords, const char* const* values,
                          int expand_dbname) {
  static const auto f = Fn<decltype(&::PQconnectdbParams)>("PQconnectdbParams");
  return f(keywords, values, expand_dbname);
}

char* PQcmdTuples(PGresult* res) {
  static const auto f = Fn<decltype(&::PQcmdTuples)>("PQcmdTuples");
  return f(res);
}

}  // extern "C"
