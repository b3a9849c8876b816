#pragma once
// libpq is loaded when a postgres:// store is opened, not when the binary starts: a SQLite
// server and `drover agent` never map libpq and the ~20 libraries behind it (Kerberos, LDAP,
// GnuTLS, ...), which would be most of an agent's memory. libpq_shim.cc defines the PQ*
// functions drover calls as forwarders to the loaded library.
#include <string>

namespace drover::store::postgres {

// Loads libpq.so.5 once; false with the reason when it cannot be loaded.
bool LoadLibPq(std::string* error);

}  // namespace drover::store::postgres
