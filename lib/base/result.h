// Expected failures as values: a Result<T> holds either a T or an Error naming what was wrong, and
// Result<void> only whether something failed. This is bulkmail's one way to return an expected
// failure. Exceptions stay for what interrupts normal processing (a broken database, out of
// memory).
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace bulkmail {

struct Error {
  // What was wrong, for a person: "to: the address has no '@'".
  std::string message;
  // The input field at fault, when one is ("to", "vars.first_name"), so that an API can name it
  // without reading it back out of the message.
  std::string field;

  explicit Error(std::string message, std::string field = {})
      : message(std::move(message)), field(std::move(field)) {}
};

template <class T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  // Precondition: ok().
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  // Precondition: !ok().
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

// Nothing to return but success or an Error.
template <>
class Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), failed_(true) {}  // NOLINT

  bool ok() const { return !failed_; }
  explicit operator bool() const { return ok(); }
  // Precondition: !ok().
  const Error& error() const { return error_; }

 private:
  Error error_{""};
  bool failed_ = false;
};

inline Error make_error(std::string message) { return Error{std::move(message)}; }
// "field: message", naming `field` as the one at fault.
inline Error field_error(const std::string& field, const std::string& message) {
  return Error{field + ": " + message, field};
}

}  // namespace bulkmail
