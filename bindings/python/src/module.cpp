// The private extension module kasm._core: thin shims only, one bind<Area>() per file. The
// Pythonic API lives in the pure-Python package (bindings/python/kasm).

#include "shim.hpp"

PYBIND11_MODULE(_core, m) {
  m.doc() = "Private C++ shims of the kasm package; use `import kasm` instead.";
  kasm::python::bindCore(m);
  kasm::python::bindModel(m);
  kasm::python::bindStore(m);
  kasm::python::bindManager(m);
  kasm::python::bindLicense(m);
}
