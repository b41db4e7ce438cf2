// Errors, version and the testing hook of _core.

#include <chrono>
#include <string>
#include <thread>

#include "kasm/version.hpp"
#include "shim.hpp"

namespace kasm::python {
namespace {

constexpr ErrorCode kAllCodes[] = {
    ErrorCode::kInvalidArgument,    ErrorCode::kNotFound,        ErrorCode::kAlreadyExists,
    ErrorCode::kFailedPrecondition, ErrorCode::kAborted,         ErrorCode::kResourceExhausted,
    ErrorCode::kPermissionDenied,   ErrorCode::kUnauthenticated, ErrorCode::kUnavailable,
    ErrorCode::kDeadlineExceeded,   ErrorCode::kDataLoss,        ErrorCode::kInternal,
};

// The Python callable (code name, message) -> exception instance that kasm/errors.py installs. It
// is deliberately leaked: destroying a Python object after the interpreter finalised would crash.
py::object* error_factory = nullptr;

void raiseCallError(const CallError& e) {
  const std::string code(errorCodeName(e.error().code()));
  if (error_factory == nullptr) {
    PyErr_SetString(PyExc_RuntimeError, e.what());
    return;
  }
  try {
    py::object exc = (*error_factory)(code, e.error().message());
    PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(exc.ptr())), exc.ptr());
  } catch (py::error_already_set& nested) {
    nested.restore();  // The factory itself failed: report that rather than hide it.
  }
}

}  // namespace

void bindCore(py::module_& m) {
  m.def(
      "version", [] { return std::string(kasm::version()); }, "The version of the linked C++ library.");
  m.def("error_code_names", [] {
    py::list out;
    for (ErrorCode c : kAllCodes) out.append(std::string(errorCodeName(c)));
    return out;
  });
  m.def("http_status_of", [](const std::string& code) {
    for (ErrorCode c : kAllCodes) {
      if (errorCodeName(c) == code) return httpStatusOf(c);
    }
    throw CallError(invalidArgument("unknown error code '" + code + "'"));
  });
  m.def("_set_error_factory", [](py::object factory) {
    if (error_factory == nullptr) error_factory = new py::object();
    *error_factory = std::move(factory);
  });
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const CallError& e) {
      raiseCallError(e);
    }
  });
  // Blocks in C++ with the GIL released, like a long manager call; for the tests of signal delivery.
  m.def(
      "_block_for_testing",
      [](int milliseconds) { std::this_thread::sleep_for(std::chrono::milliseconds(milliseconds)); }, ReleaseGil());
  // Raises the exception of `code` through the same path as a failing C++ call; for the tests.
  m.def("_raise_for_testing", [](const std::string& code, const std::string& message) {
    for (ErrorCode c : kAllCodes) {
      if (errorCodeName(c) == code) throw CallError(Error(c, message));
    }
    throw CallError(invalidArgument("unknown error code '" + code + "'"));
  });
}

}  // namespace kasm::python
