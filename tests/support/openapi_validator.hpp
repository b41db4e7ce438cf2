#pragma once

// Checks API responses against an OpenAPI 3.1 document: finds the operation for a method and a
// concrete path, picks the response schema for the status (or "default"), and validates the JSON
// body with the subset of JSON Schema the document uses (type, enum, properties, required, items,
// additionalProperties, $ref). Header-only for the tests.

#include <boost/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace kasm::testing {

class OpenApiValidator {
 public:
  explicit OpenApiValidator(std::string_view document) : doc_(boost::json::parse(document).as_object()) {}

  // Empty when the response matches the document; otherwise what is wrong.
  std::string check(std::string_view method, std::string_view path, int status, std::string_view body) const {
    const auto* op = findOperation(method, path);
    if (!op) return "no operation " + std::string(method) + " " + std::string(path) + " in the document";
    const auto& responses = op->at("responses").as_object();
    const boost::json::value* response = responses.if_contains(std::to_string(status));
    if (!response) {
      if (status < 400) return "status " + std::to_string(status) + " is not documented";
      response = responses.if_contains("default");
      if (!response) return "no default response";
    }
    const auto* content = response->as_object().if_contains("content");
    if (!content) return body.empty() ? "" : "a body where the document has none";
    const auto& schema = content->at("application/json").at("schema");
    boost::system::error_code ec;
    auto value = boost::json::parse(body, ec);
    if (ec) return "the body is not JSON: " + std::string(body.substr(0, 200));
    return validate(value, schema, "$");
  }

 private:
  static std::vector<std::string_view> split(std::string_view path) {
    std::vector<std::string_view> out;
    std::size_t pos = 0;
    while (pos < path.size()) {
      auto next = path.find('/', pos);
      if (next == std::string_view::npos) next = path.size();
      if (next > pos) out.push_back(path.substr(pos, next - pos));
      pos = next + 1;
    }
    return out;
  }

  const boost::json::object* findOperation(std::string_view method, std::string_view path) const {
    std::string m(method);
    for (auto& c : m) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const auto concrete = split(path.substr(0, path.find('?')));
    for (const auto& [templ, item] : doc_.at("paths").as_object()) {
      const auto parts = split(templ);
      if (parts.size() != concrete.size()) continue;
      bool match = true;
      for (std::size_t i = 0; i < parts.size() && match; ++i) {
        match = (parts[i].starts_with("{") && parts[i].ends_with("}")) || parts[i] == concrete[i];
      }
      if (!match) continue;
      if (auto* op = item.as_object().if_contains(m)) return &op->as_object();
    }
    return nullptr;
  }

  static bool hasType(const boost::json::value& v, std::string_view type) {
    if (type == "null") return v.is_null();
    if (type == "string") return v.is_string();
    if (type == "boolean") return v.is_bool();
    if (type == "integer") return v.is_int64() || v.is_uint64();
    if (type == "number") return v.is_number();
    if (type == "array") return v.is_array();
    if (type == "object") return v.is_object();
    return false;
  }

  std::string validate(const boost::json::value& v, const boost::json::value& schema_value,
                       const std::string& where) const {
    const auto& schema = schema_value.as_object();
    if (auto* r = schema.if_contains("$ref")) {
      std::string_view ref = r->as_string();
      const std::string_view prefix = "#/components/schemas/";
      return validate(v, doc_.at("components").at("schemas").at(ref.substr(prefix.size())), where);
    }
    if (auto* t = schema.if_contains("type")) {
      bool ok = false;
      if (t->is_string()) {
        ok = hasType(v, t->as_string());
      } else {
        for (const auto& alt : t->as_array()) ok = ok || hasType(v, alt.as_string());
      }
      if (!ok) return where + ": expected " + boost::json::serialize(*t) + ", got " + boost::json::serialize(v);
    }
    if (auto* e = schema.if_contains("enum")) {
      bool found = false;
      for (const auto& alt : e->as_array()) found = found || alt == v;
      if (!found) return where + ": " + boost::json::serialize(v) + " is not in " + boost::json::serialize(*e);
    }
    if (v.is_object()) {
      const auto& o = v.as_object();
      if (auto* req = schema.if_contains("required")) {
        for (const auto& name : req->as_array()) {
          if (!o.contains(name.as_string())) return where + ": missing " + std::string(name.as_string());
        }
      }
      const auto* props = schema.if_contains("properties");
      for (const auto& [k, child] : o) {
        const boost::json::value* sub = props ? props->as_object().if_contains(k) : nullptr;
        if (!sub) sub = schema.if_contains("additionalProperties");
        if (!sub) {
          if (props) return where + ": undocumented field " + std::string(k);
          continue;
        }
        if (sub->is_bool()) continue;
        if (auto err = validate(child, *sub, where + "." + std::string(k)); !err.empty()) return err;
      }
    }
    if (v.is_array()) {
      if (auto* items = schema.if_contains("items")) {
        std::size_t i = 0;
        for (const auto& child : v.as_array()) {
          if (auto err = validate(child, *items, where + "[" + std::to_string(i++) + "]"); !err.empty()) return err;
        }
      }
    }
    return {};
  }

  boost::json::object doc_;
};

}  // namespace kasm::testing
