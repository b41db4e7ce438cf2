#pragma once

#include <cassert>
#include <optional>
#include <type_traits>
#include <utility>
#include <variant>

#include "kasm/core/error.hpp"

namespace kasm {

// Result<T> holds either a value or an Error. It is the return type of every public call that can
// fail at run time. Accessing the value of an error result (or the error of a value result) is a
// programming error and aborts in debug builds.
template <class T>
class [[nodiscard]] Result {
 public:
  using value_type = T;

  Result(const T& value) : data_(std::in_place_index<0>, value) {}
  Result(T&& value) : data_(std::in_place_index<0>, std::move(value)) {}
  Result(Error error) : data_(std::in_place_index<1>, std::move(error)) {}

  template <class U>
  requires(std::is_constructible_v<T, U&&> && !std::is_same_v<std::decay_t<U>, T> &&
           !std::is_same_v<std::decay_t<U>, Error> && !std::is_same_v<std::decay_t<U>, Result<T>>) Result(U&& value)
      : data_(std::in_place_index<0>, std::forward<U>(value)) {}

  bool ok() const noexcept { return data_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  T& value() & {
    assert(ok());
    return std::get<0>(data_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<0>(data_);
  }
  T&& value() && {
    assert(ok());
    return std::get<0>(std::move(data_));
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const& {
    assert(!ok());
    return std::get<1>(data_);
  }
  Error&& error() && {
    assert(!ok());
    return std::get<1>(std::move(data_));
  }

  T valueOr(T fallback) const& { return ok() ? value() : std::move(fallback); }

 private:
  std::variant<T, Error> data_;
};

// Result<void>: success carries nothing.
template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)) {}

  bool ok() const noexcept { return !error_.has_value(); }
  explicit operator bool() const noexcept { return ok(); }
  const Error& error() const& {
    assert(!ok());
    return *error_;
  }
  Error&& error() && {
    assert(!ok());
    return std::move(*error_);
  }

 private:
  std::optional<Error> error_;
};

inline Result<void> okResult() {
  return {};
}

}  // namespace kasm

// Propagates an error from an expression returning Result<...>; evaluates to nothing.
#define KASM_RETURN_IF_ERROR(expr)                                  \
  do {                                                              \
    auto kasm_status_ = (expr);                                     \
    if (!kasm_status_.ok()) return std::move(kasm_status_).error(); \
  } while (0)

#define KASM_CONCAT_INNER_(a, b) a##b
#define KASM_CONCAT_(a, b) KASM_CONCAT_INNER_(a, b)

// `KASM_ASSIGN_OR_RETURN(auto x, call());` declares x from the value or returns the error.
#define KASM_ASSIGN_OR_RETURN(decl, expr) KASM_ASSIGN_OR_RETURN_IMPL_(KASM_CONCAT_(kasm_result_, __LINE__), decl, expr)
#define KASM_ASSIGN_OR_RETURN_IMPL_(tmp, decl, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.ok()) return std::move(tmp).error();      \
  decl = std::move(tmp).value()
