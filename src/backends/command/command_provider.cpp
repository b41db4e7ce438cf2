// The "command" VM provider: each operation runs a configured executable with a JSON request on its
// stdin and reads a JSON answer from its stdout (the protocol is in kasm/command/command_provider.hpp).

#include "kasm/command/command_provider.hpp"

#include <boost/json.hpp>
#include <cmath>
#include <string_view>

#include "backends/command/child_process.hpp"
#include "kasm/core/enum_names.hpp"

namespace kasm::command {
namespace {

namespace json = boost::json;

constexpr const char* kBasePath = "/usr/sbin:/usr/bin:/sbin:/bin";
constexpr std::size_t kStderrInMessage = 2u << 10;
constexpr std::size_t kStdoutLimit = 4u << 20;
constexpr std::size_t kStderrKept = 64u << 10;
constexpr std::chrono::seconds kKillGrace{5};

// Exit statuses of the protocol.
constexpr int kExitInvalid = 2;
constexpr int kExitNotFound = 3;
constexpr int kExitQuota = 4;
constexpr int kExitTempFail = 75;  // EX_TEMPFAIL of sysexits.h.

// The last 2 KiB of stderr, starting on a UTF-8 character, without surrounding blanks.
std::string stderrTail(const std::string& all) {
  std::size_t start = all.size() > kStderrInMessage ? all.size() - kStderrInMessage : 0;
  while (start < all.size() && (static_cast<unsigned char>(all[start]) & 0xC0) == 0x80) ++start;
  std::string_view tail(all);
  tail.remove_prefix(start);
  const auto first = tail.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  tail.remove_prefix(first);
  tail.remove_suffix(tail.size() - 1 - tail.find_last_not_of(" \t\r\n"));
  return std::string(tail);
}

json::object tagsObject(const std::map<std::string, std::string>& tags) {
  json::object o;
  for (const auto& [k, v] : tags) o[k] = v;
  return o;
}

// Reads one answer field by field; the first problem becomes an Unavailable naming the field.
class AnswerReader {
 public:
  explicit AnswerReader(std::string what) : what_(std::move(what)) {}

  Error bad(const std::string& field, const std::string& problem) const {
    return unavailable(what_ + " gave a malformed answer: " + field + ": " + problem);
  }

  // A string member; nullopt when absent or null (required: an error instead).
  Result<std::optional<std::string>> string(const json::object& o, std::string_view name, const std::string& path,
                                            bool required) const {
    const json::value* v = o.if_contains(name);
    if (v == nullptr || v->is_null()) {
      if (required) return bad(path, "missing");
      return std::optional<std::string>();
    }
    if (!v->is_string()) return bad(path, "expected a string");
    return std::optional<std::string>(std::string(v->get_string()));
  }

  Result<spi::VmInstance> instance(const json::value& v, const std::string& path, spi::VmInstance defaults,
                                   bool id_required, bool state_required) const {
    const std::string prefix = path.empty() ? "" : path + ".";
    if (!v.is_object()) return bad(path.empty() ? "the answer" : path, "expected an object");
    const auto& o = v.get_object();
    spi::VmInstance out = std::move(defaults);

    KASM_ASSIGN_OR_RETURN(auto id, string(o, "id", prefix + "id", id_required));
    if (id) {
      if (id->empty()) return bad(prefix + "id", "must not be empty");
      out.id = std::move(*id);
    }
    KASM_ASSIGN_OR_RETURN(auto state, string(o, "state", prefix + "state", state_required));
    if (state) {
      auto parsed = enumFromName<spi::VmState>(*state);
      if (!parsed) return bad(prefix + "state", "'" + *state + "' is not one of " + enumChoices<spi::VmState>());
      out.state = *parsed;
    }
    KASM_ASSIGN_OR_RETURN(auto address, string(o, "private_address", prefix + "private_address", false));
    if (address) out.private_address = std::move(*address);

    if (const json::value* tags = o.if_contains("tags"); tags != nullptr && !tags->is_null()) {
      if (!tags->is_object()) return bad(prefix + "tags", "expected an object of strings");
      out.tags.clear();
      for (const auto& [key, value] : tags->get_object()) {
        if (!value.is_string()) return bad(prefix + "tags." + std::string(key), "expected a string");
        out.tags.emplace(std::string(key), std::string(value.get_string()));
      }
    }
    if (const json::value* at = o.if_contains("launched_at"); at != nullptr && !at->is_null()) {
      if (at->is_int64()) {
        out.launched_at = fromUnixMillis(at->get_int64());
      } else if (at->is_double() && std::isfinite(at->get_double()) && std::abs(at->get_double()) < 9.0e15) {
        out.launched_at = fromUnixMillis(std::llround(at->get_double()));
      } else {
        return bad(prefix + "launched_at", "expected Unix time in milliseconds (an integer)");
      }
    }
    return out;
  }

 private:
  std::string what_;
};

bool carriesAll(const spi::VmInstance& vm, const std::map<std::string, std::string>& tags) {
  for (const auto& [k, v] : tags) {
    auto it = vm.tags.find(k);
    if (it == vm.tags.end() || it->second != v) return false;
  }
  return true;
}

class CommandProvider final : public spi::VmProvider {
 public:
  explicit CommandProvider(CommandProviderOptions options) : options_(std::move(options)) {
    std::map<std::string, std::string> env{{"PATH", kBasePath}};
    for (const auto& [k, v] : options_.environment) env.insert_or_assign(k, v);
    for (const auto& [k, v] : env) environment_.push_back(k + "=" + v);
  }

  Result<spi::VmInstance> create(const spi::VmSpec& spec) override {
    json::object request{{"operation", "create"},
                         {"name", spec.name},
                         {"client_token", spec.client_token},
                         {"user_data", spec.user_data},
                         {"tags", tagsObject(spec.tags)}};
    KASM_ASSIGN_OR_RETURN(auto answer, run("create", options_.create, request, Rules{}));
    spi::VmInstance defaults;
    defaults.state = spi::VmState::kPending;
    defaults.tags = spec.tags;
    return reader("create", options_.create).instance(answer, "", std::move(defaults), true, false);
  }

  Result<void> destroy(const std::string& instance_id) override {
    json::object request{{"operation", "destroy"}, {"id", instance_id}};
    auto answer = run("destroy", options_.destroy, request, Rules{.exit3_not_found = true, .empty_ok = true});
    if (!answer.ok() && answer.error().code() != ErrorCode::kNotFound) return std::move(answer).error();
    return {};
  }

  Result<std::vector<spi::VmInstance>> list(const std::map<std::string, std::string>& tags) override {
    json::object request{{"operation", "list"}, {"tags", tagsObject(tags)}};
    KASM_ASSIGN_OR_RETURN(auto answer, run("list", options_.list, request, Rules{}));
    const AnswerReader read = reader("list", options_.list);
    const json::value* instances = answer.get_object().if_contains("instances");
    if (instances == nullptr) return read.bad("instances", "missing");
    if (!instances->is_array()) return read.bad("instances", "expected an array");
    std::vector<spi::VmInstance> out;
    const auto& array = instances->get_array();
    for (std::size_t i = 0; i < array.size(); ++i) {
      KASM_ASSIGN_OR_RETURN(auto vm, read.instance(array[i], "instances[" + std::to_string(i) + "]", {}, true, true));
      if (carriesAll(vm, tags)) out.push_back(std::move(vm));
    }
    return out;
  }

  Result<spi::VmInstance> status(const std::string& instance_id) override {
    if (options_.status.empty()) {
      KASM_ASSIGN_OR_RETURN(auto all, list({}));
      for (auto& vm : all)
        if (vm.id == instance_id) return std::move(vm);
      return notFound("command provider: status: list does not show a machine with the id '" + instance_id + "'");
    }
    json::object request{{"operation", "status"}, {"id", instance_id}};
    KASM_ASSIGN_OR_RETURN(auto answer, run("status", options_.status, request, Rules{.exit3_not_found = true}));
    const AnswerReader read = reader("status", options_.status);
    spi::VmInstance defaults;
    defaults.id = instance_id;
    KASM_ASSIGN_OR_RETURN(auto vm, read.instance(answer, "", std::move(defaults), false, true));
    if (vm.id != instance_id)
      return read.bad("id", "'" + vm.id + "' answers for another machine than '" + instance_id + "'");
    return vm;
  }

 private:
  struct Rules {
    bool exit3_not_found = false;  // Exit status 3 is NotFound (status; destroy makes it success).
    bool empty_ok = false;         // No output at all stands for {} (destroy).
  };

  static std::string describe(std::string_view operation, const std::vector<std::string>& argv) {
    return "command provider: " + std::string(operation) + " (" + argv.front() + ")";
  }
  static AnswerReader reader(std::string_view operation, const std::vector<std::string>& argv) {
    return AnswerReader(describe(operation, argv));
  }

  // Runs one operation; its answer (a JSON object) or the error its outcome means.
  Result<json::value> run(std::string_view operation, const std::vector<std::string>& argv, const json::object& request,
                          Rules rules) const {
    const std::string what = describe(operation, argv);
    detail::ChildRequest child;
    child.argv = argv;
    child.environment = environment_;
    child.working_directory = options_.working_directory;
    child.input = json::serialize(request);
    if (validUtf8(child.input) != child.input)
      return invalidArgument(what + ": the request is not valid UTF-8 (names, tokens, user data and tags must be)");
    child.timeout = options_.timeout;
    child.kill_grace = kKillGrace;
    child.stdout_limit = kStdoutLimit;
    child.stderr_keep = kStderrKept;

    auto ran = detail::runChild(child);
    if (!ran.ok()) return ran.error().withContext(what);
    const detail::ChildOutcome& outcome = *ran;
    const std::string tail = stderrTail(outcome.error_tail);
    const std::string said = tail.empty() ? std::string() : "; stderr: " + tail;
    if (outcome.timed_out)
      return unavailable(what + " timed out after " + std::to_string(options_.timeout.count()) + " s and was killed" +
                         said);
    if (outcome.stdout_overflow)
      return unavailable(what + ": the answer exceeds " + std::to_string(kStdoutLimit >> 20) + " MiB on stdout" + said);
    if (!outcome.exited) return unavailable(what + " was killed by signal " + std::to_string(outcome.signal) + said);

    const int code = outcome.exit_status;
    if (code != 0) {
      const std::string message = what + " exited with status " + std::to_string(code) + said;
      if (code == kExitInvalid) return invalidArgument(message);
      if (code == kExitNotFound && rules.exit3_not_found) return notFound(message);
      if (code == kExitQuota) return resourceExhausted(message);
      if (code == kExitTempFail) return unavailable(message);
      return unavailable(message);
    }

    if (rules.empty_ok && outcome.output.find_first_not_of(" \t\r\n") == std::string::npos) return json::object();
    boost::system::error_code ec;
    json::value answer = json::parse(outcome.output, ec);
    if (ec) {
      std::string start = outcome.output.substr(0, 120);
      return unavailable(what + " answered with something that is not JSON (" + ec.message() + "): '" + start + "'" +
                         said);
    }
    if (!answer.is_object()) return unavailable(what + " answered with JSON that is not an object" + said);
    return answer;
  }

  const CommandProviderOptions options_;
  std::vector<std::string> environment_;  // The child's whole environment, "NAME=value".
};

}  // namespace

Result<std::unique_ptr<spi::VmProvider>> makeCommandProvider(CommandProviderOptions options) {
  KASM_RETURN_IF_ERROR(validateCommandProviderOptions(options));
  return std::unique_ptr<spi::VmProvider>(std::make_unique<CommandProvider>(std::move(options)));
}

Result<void> registerCommandProvider(spi::VmProviderRegistry& registry) {
  return registry.registerFactory(kCommandProviderName,
                                  [](const std::string& config) -> Result<std::unique_ptr<spi::VmProvider>> {
                                    KASM_ASSIGN_OR_RETURN(auto options, parseCommandProviderOptions(config));
                                    return makeCommandProvider(std::move(options));
                                  });
}

}  // namespace kasm::command
