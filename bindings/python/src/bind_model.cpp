// Models: they cross the boundary as JSON text in the library's own format (kasm/model/json.hpp),
// so these shims only decode, validate and encode.

#include <string>

#include "kasm/model/json.hpp"
#include "model_kinds.hpp"

namespace kasm::python {

void bindModel(py::module_& m) {
  m.def("model_kinds", [] {
    py::list out;
    for (auto k : kModelKinds) out.append(std::string(k));
    return out;
  });
  // Decodes, validates and re-encodes: fills defaults and reports the first bad field.
  m.def("normalize_model", [](const std::string& kind, const std::string& json) {
    return withModelKind(kind, [&]<class T>(std::type_identity<T>) {
      T value = unwrap(fromJson<T>(json));
      unwrap(value.validate());
      return toJson(value);
    });
  });
  m.def("model_json_schema", [](const std::string& kind) {
    return withModelKind(kind, []<class T>(std::type_identity<T>) { return jsonSchema<T>(); });
  });
}

}  // namespace kasm::python
