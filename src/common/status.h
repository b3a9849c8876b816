#pragma once
// Status and Result<T>: errors as values across module boundaries (nothing is thrown across an
// interface). OK costs one enum compare. A Status may carry field errors for validation failures.
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace drover {

struct FieldError {
  std::string field;
  std::string message;
  bool operator==(const FieldError&) const = default;
};

class Status {
 public:
  enum class Code {
    kOk,
    kInvalidArgument,    // malformed input (400)
    kValidation,         // well-formed input that breaks a rule; see errors() (422)
    kUnauthenticated,    // 401
    kPermissionDenied,   // 403
    kNotFound,           // 404
    kConflict,           // 409
    kTooLarge,           // 413
    kUnsupportedMedia,   // 415
    kResourceExhausted,  // 429
    kUnavailable,        // 503: retry later; nothing was applied
    kInternal,           // 500: a bug
  };

  Status() = default;
  static Status Ok() { return {}; }
  static Status InvalidArgument(std::string m) { return {Code::kInvalidArgument, std::move(m)}; }
  // Malformed input with the fields it is about (400 with errors[]).
  static Status InvalidArgument(std::string m, std::vector<FieldError> errors) {
    Status s{Code::kInvalidArgument, std::move(m)};
    s.errors_ = std::move(errors);
    return s;
  }
  static Status Validation(std::vector<FieldError> errors, std::string m = "validation failed") {
    Status s{Code::kValidation, std::move(m)};
    s.errors_ = std::move(errors);
    return s;
  }
  static Status Unauthenticated(std::string m) { return {Code::kUnauthenticated, std::move(m)}; }
  static Status PermissionDenied(std::string m) { return {Code::kPermissionDenied, std::move(m)}; }
  static Status NotFound(std::string m) { return {Code::kNotFound, std::move(m)}; }
  static Status Conflict(std::string m) { return {Code::kConflict, std::move(m)}; }
  static Status TooLarge(std::string m) { return {Code::kTooLarge, std::move(m)}; }
  static Status UnsupportedMedia(std::string m) { return {Code::kUnsupportedMedia, std::move(m)}; }
  static Status ResourceExhausted(std::string m) {
    return {Code::kResourceExhausted, std::move(m)};
  }
  static Status Unavailable(std::string m) { return {Code::kUnavailable, std::move(m)}; }
  static Status Internal(std::string m) { return {Code::kInternal, std::move(m)}; }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  const std::vector<FieldError>& errors() const { return errors_; }
  // Text for the server's log only, never for a client: e.g. the database's own error message
  // behind a generic "the database is unavailable".
  const std::string& detail() const { return detail_; }
  Status WithDetail(std::string d) && {
    detail_ = std::move(d);
    return std::move(*this);
  }
  bool IsNotFound() const { return code_ == Code::kNotFound; }
  bool IsUnavailable() const { return code_ == Code::kUnavailable; }
  bool IsConflict() const { return code_ == Code::kConflict; }
  bool IsValidation() const { return code_ == Code::kValidation; }
  // Code, message, field errors and detail: for logs.
  std::string ToString() const;

 private:
  Status(Code c, std::string m) : code_(c), message_(std::move(m)) {}
  Code code_ = Code::kOk;
  std::string message_;
  std::vector<FieldError> errors_;
  std::string detail_;
};

// A value or the Status explaining why there is none.
// REQUIRES: value() only when ok().
template <typename T>
class Result {
 public:
  Result(T v) : value_(std::move(v)) {}        // NOLINT: implicit by design
  Result(Status s) : status_(std::move(s)) {}  // NOLINT
  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() { return *value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

// What a declarative PUT did: created the resource, changed it, or found it as asked (then
// nothing was written: no new index, no event, nobody woken).
enum class Written { kCreated, kUpdated, kUnchanged };

#define DROVER_RETURN_IF_ERROR(expr) \
  do {                               \
    ::drover::Status _st = (expr);   \
    if (!_st.ok()) return _st;       \
  } while (0)

}  // namespace drover
