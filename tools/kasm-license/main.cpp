// kasm-license: licence issuing for vendors, offline.
//
//   kasm-license keygen   --private-key FILE --public-key FILE
//   kasm-license issue    --private-key FILE --customer NAME --type concurrent_sessions|named_users
//                         --limit N --days N [--starts-in-days N] [--features a,b,...]
//                         [--renewal-ttl-days N] [--id ID] [--out FILE]
//   kasm-license activate --private-key FILE --activation-key FILE --installation-id ID [--out FILE]
//   kasm-license verify   --public-key FILE --license FILE [--installation-id ID]
//
// Exit status: 0 on success, 1 when the operation failed (the reason is on stderr), 2 for bad usage.

#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "kasm/core/clock.hpp"
#include "kasm/core/enum_names.hpp"
#include "kasm/core/id.hpp"
#include "kasm/license/keys.hpp"
#include "kasm/license/text.hpp"

namespace {

using namespace kasm;

constexpr const char* kUsage =
    "usage:\n"
    "  kasm-license keygen   --private-key FILE --public-key FILE\n"
    "  kasm-license issue    --private-key FILE --customer NAME --type concurrent_sessions|named_users\n"
    "                        --limit N --days N [--starts-in-days N] [--features a,b,...]\n"
    "                        [--renewal-ttl-days N] [--id ID] [--out FILE]\n"
    "  kasm-license activate --private-key FILE --activation-key FILE --installation-id ID [--out FILE]\n"
    "  kasm-license verify   --public-key FILE --license FILE [--installation-id ID]\n";

struct UsageError {
  std::string message;
};

class Args {
 public:
  Args(int argc, char** argv, int first) {
    for (int i = first; i < argc; ++i) {
      std::string key = argv[i];
      if (!key.starts_with("--") || i + 1 >= argc) throw UsageError{"expected --option value, got '" + key + "'"};
      values_[key.substr(2)] = argv[++i];
    }
  }
  std::string required(const std::string& name) {
    auto it = values_.find(name);
    if (it == values_.end()) throw UsageError{"--" + name + " is required"};
    used_.push_back(name);
    return it->second;
  }
  std::string optional(const std::string& name, std::string fallback = "") {
    auto it = values_.find(name);
    if (it == values_.end()) return fallback;
    used_.push_back(name);
    return it->second;
  }
  std::int64_t number(const std::string& name, std::optional<std::int64_t> fallback = std::nullopt) {
    std::string text = fallback && !values_.count(name) ? std::to_string(*fallback) : required(name);
    if (values_.count(name)) used_.push_back(name);
    try {
      std::size_t pos = 0;
      const long long v = std::stoll(text, &pos);
      if (pos != text.size() || v < 0) throw std::invalid_argument("");
      return v;
    } catch (const std::exception&) {
      throw UsageError{"--" + name + " must be a whole number, 0 or more"};
    }
  }
  void rejectUnknown() const {
    for (const auto& [k, v] : values_) {
      if (std::find(used_.begin(), used_.end(), k) == used_.end()) throw UsageError{"unknown option --" + k};
    }
  }

 private:
  std::map<std::string, std::string> values_;
  std::vector<std::string> used_;
};

bool readFile(const std::string& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  out = ss.str();
  return true;
}

bool writeFile(const std::string& path, const std::string& text, bool exclusive) {
  if (exclusive && std::ifstream(path)) {
    std::cerr << "kasm-license: " << path << " already exists; not overwriting it\n";
    return false;
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) std::cerr << "kasm-license: cannot write " << path << "\n";
  return static_cast<bool>(out);
}

int fail(const Error& e) {
  std::cerr << "kasm-license: " << e.message() << "\n";
  return 1;
}

// Writes to --out when given, else to stdout.
int emit(const std::string& text, const std::string& out) {
  if (out.empty()) {
    std::cout << text;
    return 0;
  }
  return writeFile(out, text, false) ? 0 : 1;
}

Result<license::SigningKey> loadSigningKey(const std::string& path) {
  std::string pem;
  if (!readFile(path, pem)) return invalidArgument("cannot read the private key file " + path);
  return license::SigningKey::fromPem(pem);
}

std::string featureList(const std::set<std::string>& features) {
  std::string out;
  for (const auto& f : features) out += (out.empty() ? "" : ",") + f;
  return out.empty() ? "(none)" : out;
}

int keygen(Args& args) {
  const std::string priv = args.required("private-key"), pub = args.required("public-key");
  args.rejectUnknown();
  auto key = license::SigningKey::generate();
  if (!key.ok()) return fail(key.error());
  if (!writeFile(priv, key->toPem(), true)) return 1;
  if (!writeFile(pub, key->verifyingKey().toPem(), true)) return 1;
  std::cerr << "kasm-license: wrote " << priv << " (keep it secret) and " << pub << " (ship it), fingerprint "
            << key->verifyingKey().fingerprint() << "\n";
  return 0;
}

int issue(Args& args) {
  auto key = loadSigningKey(args.required("private-key"));
  if (!key.ok()) return fail(key.error());
  license::ActivationKey a;
  a.customer = args.required("customer");
  const std::string type = args.required("type");
  auto parsed_type = enumFromName<LicenseType>(type);
  if (!parsed_type) throw UsageError{"--type must be one of " + enumChoices<LicenseType>()};
  a.type = *parsed_type;
  a.limit = args.number("limit");
  const auto days = args.number("days");
  const auto starts_in = args.number("starts-in-days", 0);
  const auto ttl_days = args.number("renewal-ttl-days", 0);
  const std::string features = args.optional("features");
  std::string id = args.optional("id");
  const std::string out = args.optional("out");
  args.rejectUnknown();
  for (std::size_t pos = 0; pos < features.size();) {
    auto comma = features.find(',', pos);
    if (comma == std::string::npos) comma = features.size();
    if (comma > pos) a.features.insert(features.substr(pos, comma - pos));
    pos = comma + 1;
  }
  if (id.empty()) {
    id = generateIdString();  // The OS CSPRNG: licence ids are not guessable.
  }
  a.id = id;
  const TimePoint now = std::chrono::floor<std::chrono::seconds>(SystemClock().now());
  const auto day = std::chrono::hours(24);
  a.issued_at = now;
  a.not_before = now + starts_in * day;
  a.expires_at = a.not_before + days * day;
  a.renewal_ttl = ttl_days * day;
  auto text = license::writeActivationKey(a, *key);
  if (!text.ok()) return fail(text.error());
  std::cerr << "kasm-license: activation key " << a.id << " for " << a.customer << ": " << a.limit << " " << type
            << ", features " << featureList(a.features) << ", " << license::formatTime(a.not_before) << " to "
            << license::formatTime(a.expires_at) << "\n";
  return emit(*text, out);
}

int activateCommand(Args& args) {
  auto key = loadSigningKey(args.required("private-key"));
  if (!key.ok()) return fail(key.error());
  const std::string path = args.required("activation-key");
  const std::string installation = args.required("installation-id");
  const std::string out = args.optional("out");
  args.rejectUnknown();
  std::string text;
  if (!readFile(path, text)) return fail(invalidArgument("cannot read the activation key file " + path));
  const license::VerifyingKey own = key->verifyingKey();
  auto a = license::readActivationKey(text, std::span(&own, 1));
  if (!a.ok()) return fail(a.error());
  auto doc = license::activate(*a, installation, SystemClock().now());
  if (!doc.ok()) return fail(doc.error());
  auto lic = license::writeLicense(*doc, *key);
  if (!lic.ok()) return fail(lic.error());
  std::cerr << "kasm-license: license " << doc->id.str() << " for installation " << installation << "\n";
  return emit(*lic, out);
}

int verify(Args& args) {
  const std::string pub_path = args.required("public-key"), lic_path = args.required("license");
  const std::string installation = args.optional("installation-id");
  args.rejectUnknown();
  std::string pem, text;
  if (!readFile(pub_path, pem)) return fail(invalidArgument("cannot read the public key file " + pub_path));
  if (!readFile(lic_path, text)) return fail(invalidArgument("cannot read the license file " + lic_path));
  auto pub = license::VerifyingKey::fromPem(pem);
  if (!pub.ok()) return fail(pub.error());
  auto doc = license::readLicense(text, std::span(&pub.value(), 1));
  if (!doc.ok()) return fail(doc.error());
  if (!installation.empty() && doc->installation_id != installation) {
    return fail(invalidArgument("the license is for installation " + doc->installation_id + ", not " + installation));
  }
  std::cout << "license: " << doc->id.str() << "\n"
            << "customer: " << doc->customer << "\n"
            << "installation: " << doc->installation_id << "\n"
            << "type: " << enumName(doc->type) << "\n"
            << "limit: " << doc->limit << "\n"
            << "features: " << featureList(doc->features) << "\n"
            << "valid: " << license::formatTime(doc->not_before) << " to " << license::formatTime(doc->validUntil())
            << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << kUsage;
    return 2;
  }
  const std::string command = argv[1];
  try {
    Args args(argc, argv, 2);
    if (command == "keygen") return keygen(args);
    if (command == "issue") return issue(args);
    if (command == "activate") return activateCommand(args);
    if (command == "verify") return verify(args);
    throw UsageError{"unknown command '" + command + "'"};
  } catch (const UsageError& e) {
    std::cerr << "kasm-license: " << e.message << "\n" << kUsage;
    return 2;
  }
}
