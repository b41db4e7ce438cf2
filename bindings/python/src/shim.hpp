#pragma once

// Shared pieces of the _core shims: the C++ exception that carries a kasm::Error to the translator
// (bind_core.cpp), unwrapping Result<T>, and the handles Python holds. Nothing here is public API;
// the Python package (bindings/python/kasm) is.

#include <pybind11/pybind11.h>

#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "kasm/core/error.hpp"
#include "kasm/core/result.hpp"

namespace kasm::spi {
class Store;
}

namespace kasm::python {

namespace py = pybind11;

// Thrown by unwrap() (usually with the GIL released) and turned into the kasm.KasmError subclass of
// the code by the translator registered in bindCore().
class CallError : public std::exception {
 public:
  explicit CallError(Error error) : error_(std::move(error)), what_(error_.toString()) {}
  const Error& error() const noexcept { return error_; }
  const char* what() const noexcept override { return what_.c_str(); }

 private:
  Error error_;
  std::string what_;
};

template <class T>
T unwrap(Result<T>&& result) {
  if (!result.ok()) throw CallError(std::move(result).error());
  return std::move(result).value();
}

inline void unwrap(Result<void>&& result) {
  if (!result.ok()) throw CallError(std::move(result).error());
}

// Shorthand for shims that may block: the GIL is released while the C++ call runs. Arguments are
// converted before and the return value after, with the GIL held.
using ReleaseGil = py::call_guard<py::gil_scoped_release>;

// Something Python can close explicitly while other threads may still be inside a call: a call
// takes a copy of the shared_ptr under the mutex and works on it, so close() only drops the
// handle's reference and the object dies when the last in-flight call returns. Never a dangling
// pointer, whatever the order in which Python collects things.
template <class T>
class Closable {
 public:
  explicit Closable(std::shared_ptr<T> value, std::string what) : value_(std::move(value)), what_(std::move(what)) {}

  std::shared_ptr<T> acquire() const {
    std::lock_guard lock(mu_);
    if (!value_) throw CallError(failedPrecondition(what_ + " is closed"));
    return value_;
  }
  // Returns the reference so the caller can drop it without the GIL (destruction may block).
  std::shared_ptr<T> release() {
    std::lock_guard lock(mu_);
    return std::exchange(value_, nullptr);
  }
  bool closed() const {
    std::lock_guard lock(mu_);
    return value_ == nullptr;
  }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<T> value_;
  std::string what_;
};

using StoreHandle = Closable<spi::Store>;
struct ManagerState;
using ManagerHandle = Closable<ManagerState>;

void bindCore(py::module_& m);
void bindModel(py::module_& m);
void bindStore(py::module_& m);
void bindManager(py::module_& m);
void bindLicense(py::module_& m);

}  // namespace kasm::python
