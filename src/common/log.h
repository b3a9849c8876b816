#pragma once
// Process-wide structured logging. Lines go to a buffer that a background thread writes to
// stderr in large chunks, so logging one line per request costs a format and a memcpy, not a
// syscall. Errors flush at once. Thread-safe. The one process-wide object in drover: a logger
// is needed before and after everything else exists.
#include <fmt/format.h>

#include <initializer_list>
#include <span>
#include <string>
#include <string_view>

namespace drover {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };
enum class LogFormat { kText, kJson };

struct LogField {
  std::string_view key;  // an identifier ([a-z_]), written as is
  std::string_view value;
};

// Configures the logger; call before other threads log. Default: text, info, stderr.
void InitLogging(LogFormat format, LogLevel level);
// Parses "debug|info|warn|error"; false when unknown.
bool ParseLogLevel(std::string_view s, LogLevel* out);
bool LogEnabled(LogLevel level);
// Writes one line: time, level, message and fields (values escaped in JSON form).
void Log(LogLevel level, std::string_view msg, std::initializer_list<LogField> fields = {});
// The same with the fields in an array (some of them left out at run time).
void Log(LogLevel level, std::string_view msg, std::span<const LogField> fields);
// Writes buffered lines now (call at shutdown).
void FlushLogs();

template <typename... A>
void LogInfo(fmt::format_string<A...> f, A&&... a) {
  if (LogEnabled(LogLevel::kInfo)) Log(LogLevel::kInfo, fmt::format(f, std::forward<A>(a)...));
}
template <typename... A>
void LogWarn(fmt::format_string<A...> f, A&&... a) {
  if (LogEnabled(LogLevel::kWarn)) Log(LogLevel::kWarn, fmt::format(f, std::forward<A>(a)...));
}
template <typename... A>
void LogError(fmt::format_string<A...> f, A&&... a) {
  if (LogEnabled(LogLevel::kError)) Log(LogLevel::kError, fmt::format(f, std::forward<A>(a)...));
}
template <typename... A>
void LogDebug(fmt::format_string<A...> f, A&&... a) {
  if (LogEnabled(LogLevel::kDebug)) Log(LogLevel::kDebug, fmt::format(f, std::forward<A>(a)...));
}

}  // namespace drover
