// Licensing of the manager's installation (manager.licensing()): status, licences, features.

#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "kasm/core/enum_names.hpp"
#include "kasm/model/json.hpp"
#include "manager_state.hpp"
#include "shim.hpp"

namespace kasm::python {
namespace {

// A view of one manager's Licensing; holds the manager handle, so it fails cleanly after close().
struct LicensingHandle {
  std::shared_ptr<ManagerHandle> manager;
  license::Licensing& licensing(std::shared_ptr<ManagerState>& st) const {
    st = manager->acquire();
    return st->manager->licensing();
  }
};

py::dict statusToDict(const license::LicenseStatus& s) {
  py::dict d;
  d["state"] = std::string(enumName(s.state));
  d["installation_id"] = s.installation_id;
  d["type"] = std::string(enumName(s.type));
  d["limit"] = s.limit == license::LicensePolicy::kUnlimited ? py::object(py::none()) : py::object(py::int_(s.limit));
  d["used"] = s.used;
  d["sessions_in_use"] = s.sessions_in_use;
  d["features"] = std::vector<std::string>(s.features.begin(), s.features.end());
  d["valid_until_ms"] = s.valid_until ? py::object(py::int_(toUnixMillis(*s.valid_until))) : py::object(py::none());
  d["days_left"] = s.days_left ? py::object(py::int_(*s.days_left)) : py::object(py::none());
  d["message"] = s.message;
  d["customer"] = s.active ? s.active->customer : std::string();
  py::list problems;
  for (const auto& p : s.problems) {
    py::dict pd;
    pd["id"] = p.id.str();
    pd["message"] = p.message;
    problems.append(pd);
  }
  d["problems"] = problems;
  return d;
}

}  // namespace

void bindLicense(py::module_& m) {
  py::class_<LicensingHandle>(m, "Licensing")
      .def(py::init([](std::shared_ptr<ManagerHandle> manager) { return LicensingHandle{std::move(manager)}; }))
      .def("status",
           [](const LicensingHandle& h) {
             license::LicenseStatus status;
             {
               py::gil_scoped_release release;
               std::shared_ptr<ManagerState> st;
               status = unwrap(h.licensing(st).status());
             }
             return statusToDict(status);
           })
      .def(
          "installation_id",
          [](const LicensingHandle& h) {
            std::shared_ptr<ManagerState> st;
            return unwrap(h.licensing(st).installationId());
          },
          ReleaseGil())
      .def(
          "add_license",
          [](const LicensingHandle& h, const std::string& armored) {
            std::shared_ptr<ManagerState> st;
            return toJson(unwrap(h.licensing(st).addLicense(armored)));
          },
          ReleaseGil())
      .def(
          "remove_license",
          [](const LicensingHandle& h, const std::string& id) {
            std::shared_ptr<ManagerState> st;
            unwrap(h.licensing(st).removeLicense(unwrap(LicenseId::parse(id, "license_id"))));
          },
          ReleaseGil())
      .def(
          "list_licenses",
          [](const LicensingHandle& h) {
            std::shared_ptr<ManagerState> st;
            std::vector<std::string> out;
            for (const auto& l : unwrap(h.licensing(st).listLicenses())) out.push_back(toJson(l));
            return out;
          },
          ReleaseGil())
      .def(
          "require_feature",
          [](const LicensingHandle& h, const std::string& feature) {
            std::shared_ptr<ManagerState> st;
            unwrap(h.licensing(st).requireFeature(feature));
          },
          ReleaseGil());
}

}  // namespace kasm::python
