// The "command" VM provider: the conformance suite over the reference script
// (scripts/vm-providers/directory-vms.py), then the protocol's edges with tiny scripts written here.

#include "kasm/command/command_provider.hpp"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "backends/command/child_process.hpp"
#include "conformance/vm_provider_conformance.hpp"

namespace kasm::command {
namespace {

namespace fs = std::filesystem;
using std::chrono::steady_clock;
using namespace std::chrono_literals;

const std::string kReferenceScript = KASM_DIRECTORY_VMS_SCRIPT;

fs::path makeTempDir(const std::string& prefix) {
  std::string pattern = (fs::temp_directory_path() / (prefix + "-XXXXXX")).string();
  if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  return pattern;
}

std::string readFile(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Processes of group `pgid` that are still alive (zombies waiting for a reaper do not count).
int livingMembersOf(pid_t pgid) {
  int living = 0;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string stat = readFile(entry.path() / "stat");
    const auto close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream fields(stat.substr(close + 1));
    char state = 0;
    long ppid = 0, pgrp = 0;
    if (fields >> state >> ppid >> pgrp && pgrp == pgid && state != 'Z' && state != 'X') ++living;
  }
  return living;
}

// True once the group has no living member, waiting up to a generous bound.
bool groupEnds(pid_t pgid) {
  const auto until = steady_clock::now() + 10s;
  while (livingMembersOf(pgid) > 0) {
    if (steady_clock::now() > until) return false;
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

std::size_t openDescriptors() {
  return static_cast<std::size_t>(std::distance(fs::directory_iterator("/proc/self/fd"), fs::directory_iterator()));
}

// ---- the conformance suite over the reference script ----

const fs::path& referenceStateDir() {
  struct Dir {
    fs::path path = makeTempDir("kasm-vms");
    ~Dir() { fs::remove_all(path); }
  };
  static const Dir dir;
  return dir.path;
}

std::unique_ptr<spi::VmProvider> referenceProvider(bool with_status) {
  CommandProviderOptions o;
  o.create = o.destroy = o.list = {kReferenceScript};
  if (with_status) o.status = {kReferenceScript};
  o.environment = {{"KASM_VMS_DIR", referenceStateDir().string()}};
  o.timeout = 60s;
  auto made = makeCommandProvider(std::move(o));
  return made.ok() ? std::move(*made) : nullptr;
}

}  // namespace
}  // namespace kasm::command

namespace kasm::testing {
INSTANTIATE_TEST_SUITE_P(
    Command, VmProviderConformance,
    ::testing::Values(VmProviderUnderTest{"command", [] { return command::referenceProvider(true); }, "vm-404"},
                      VmProviderUnderTest{"command_list_only", [] { return command::referenceProvider(false); },
                                          "vm-404"}),
    [](const ::testing::TestParamInfo<VmProviderUnderTest>& info) { return info.param.name; });
}  // namespace kasm::testing

namespace kasm::command {
namespace {

// ---- the protocol's edges, with scripts each test writes ----

class CommandProviderTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = makeTempDir("kasm-command-test"); }
  void TearDown() override { fs::remove_all(dir_); }

  // An executable file holding `text`.
  std::string executable(const std::string& name, const std::string& text) {
    const fs::path path = dir_ / name;
    std::ofstream(path) << text;
    fs::permissions(path, fs::perms::owner_all);
    return path.string();
  }
  // An executable /bin/sh script; $DIR in it is the test's directory.
  std::string script(const std::string& name, const std::string& body) {
    return executable(name, "#!/bin/sh\nDIR='" + dir_.string() + "'\n" + body + "\n");
  }

  // Every operation runs `path`.
  CommandProviderOptions options(const std::string& path) {
    CommandProviderOptions o;
    o.create = o.destroy = o.list = o.status = {path};
    o.timeout = 60s;
    return o;
  }

  std::unique_ptr<spi::VmProvider> provider(CommandProviderOptions o) {
    auto made = makeCommandProvider(std::move(o));
    EXPECT_TRUE(made.ok()) << made.error().toString();
    return made.ok() ? std::move(*made) : nullptr;
  }
  std::unique_ptr<spi::VmProvider> provider(const std::string& body) { return provider(options(script("p", body))); }

  static spi::VmSpec spec() {
    spi::VmSpec s;
    s.name = "kasm-test-1";
    s.client_token = "token-1";
    s.user_data = "#!/bin/sh\necho hello\n";
    s.tags = {{"kasm:installation", "inst"}, {"kasm:vm", "row-1"}};
    return s;
  }

  fs::path dir_;
};

TEST_F(CommandProviderTest, RequestsFollowTheProtocolAndTheChildGetsOnlyItsEnvironment) {
  ASSERT_EQ(::setenv("KASM_TEST_SERVER_SECRET", "hunter2", 1), 0);
  auto o = options(script("p",
                          "cat > \"$DIR/request.json\"; env > \"$DIR/env.txt\"; pwd > \"$DIR/pwd.txt\"\n"
                          "echo '{\"id\": \"vm-1\"}'"));
  o.environment = {{"KASM_EXTRA", "from config"}};
  auto p = provider(std::move(o));
  auto made = p->create(spec());
  ::unsetenv("KASM_TEST_SERVER_SECRET");
  ASSERT_TRUE(made.ok()) << made.error().toString();
  EXPECT_EQ(made->id, "vm-1");
  EXPECT_EQ(made->state, spi::VmState::kPending) << "state defaults to pending";
  EXPECT_EQ(made->tags, spec().tags) << "tags default to the request's";

  EXPECT_EQ(readFile(dir_ / "request.json"),
            R"({"operation":"create","name":"kasm-test-1","client_token":"token-1",)"
            R"("user_data":"#!/bin/sh\necho hello\n","tags":{"kasm:installation":"inst","kasm:vm":"row-1"}})");
  const std::string env = readFile(dir_ / "env.txt");
  EXPECT_NE(env.find("PATH=/usr/sbin:/usr/bin:/sbin:/bin\n"), std::string::npos) << env;
  EXPECT_NE(env.find("KASM_EXTRA=from config\n"), std::string::npos) << env;
  EXPECT_EQ(env.find("hunter2"), std::string::npos) << "the server's environment leaked:\n" << env;
  EXPECT_EQ(env.find("HOME="), std::string::npos) << env;
  EXPECT_EQ(readFile(dir_ / "pwd.txt"), "/\n");
}

TEST_F(CommandProviderTest, TheChildHasOnlyStandardDescriptorsAndNoneLeakHere) {
  // The answer carries the descriptors above 2 the child has open; they are also saved in argv[1].
  const std::string lister = executable("fds",
                                        "#!/usr/bin/python3\n"
                                        "import json, os, sys\n"
                                        "def is_open(fd):\n"
                                        "    try:\n"
                                        "        os.fstat(fd)\n"
                                        "        return True\n"
                                        "    except OSError:\n"
                                        "        return False\n"
                                        "fds = [fd for fd in range(3, 1024) if is_open(fd)]\n"
                                        "answer = json.dumps({'instances': [], 'fds': fds})\n"
                                        "with open(sys.argv[1], 'w') as f:\n"
                                        "    f.write(answer)\n"
                                        "print(answer)\n");
  const int stray = ::open("/dev/null", O_RDONLY);  // Without O_CLOEXEC, as a careless library would.
  ASSERT_GE(stray, 0);
  auto o = options(lister);
  o.list.push_back((dir_ / "fds.json").string());
  auto p = provider(std::move(o));
  const std::size_t before = openDescriptors();
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(p->list({}).ok());
  EXPECT_EQ(openDescriptors(), before);
  ::close(stray);
  EXPECT_NE(readFile(dir_ / "fds.json").find("\"fds\": []"), std::string::npos) << readFile(dir_ / "fds.json");
}

TEST_F(CommandProviderTest, ATimeoutKillsTheWholeGroupAndIsUnavailable) {
  auto o = options(script("p", "echo $$ > \"$DIR/pgid\"; sleep 30 & sleep 30"));
  o.timeout = 1s;
  auto p = provider(std::move(o));
  const auto start = steady_clock::now();
  auto listed = p->list({});
  ASSERT_FALSE(listed.ok());
  EXPECT_LT(steady_clock::now() - start, 20s);
  EXPECT_EQ(listed.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(listed.error().message().find("timed out after 1 s"), std::string::npos) << listed.error().toString();
  const pid_t pgid = std::stoi(readFile(dir_ / "pgid"));
  EXPECT_TRUE(groupEnds(pgid)) << "processes of group " << pgid << " survived the timeout";
}

TEST_F(CommandProviderTest, AGroupIgnoringSigtermGetsSigkillAfterTheGrace) {
  detail::ChildRequest request;
  request.argv = {script("p", "trap '' TERM; echo $$ > \"$DIR/pgid\"; sleep 30 & sleep 30")};
  request.timeout = 1s;
  request.kill_grace = 300ms;
  auto ran = detail::runChild(request);
  ASSERT_TRUE(ran.ok()) << ran.error().toString();
  EXPECT_TRUE(ran->timed_out);
  EXPECT_FALSE(ran->exited);
  EXPECT_EQ(ran->signal, SIGKILL);
  EXPECT_TRUE(groupEnds(std::stoi(readFile(dir_ / "pgid"))));
}

TEST_F(CommandProviderTest, ADescendantHoldingTheOutputDoesNotHoldTheCall) {
  auto p = provider("sleep 30 & echo $! > \"$DIR/bg\"; echo '{\"instances\": []}'");
  const auto start = steady_clock::now();
  auto listed = p->list({});
  EXPECT_LT(steady_clock::now() - start, 20s);
  ASSERT_TRUE(listed.ok()) << listed.error().toString();
  EXPECT_TRUE(listed->empty());
  ::kill(std::stoi(readFile(dir_ / "bg")), SIGKILL);
}

TEST_F(CommandProviderTest, AChildThatDoesNotReadItsInputStillAnswers) {
  auto p = provider("echo '{\"id\": \"vm-7\", \"state\": \"running\"}'");
  auto s = spec();
  s.user_data.assign(2u << 20, 'u');  // Far more than a pipe holds: the write meets EPIPE, not SIGPIPE.
  auto made = p->create(s);
  ASSERT_TRUE(made.ok()) << made.error().toString();
  EXPECT_EQ(made->id, "vm-7");
  EXPECT_EQ(made->state, spi::VmState::kRunning);
}

TEST_F(CommandProviderTest, ARequestThatIsNotUtf8IsRefusedBeforeRunning) {
  auto p = provider("touch \"$DIR/ran\"; echo '{\"id\": \"vm-1\"}'");
  auto s = spec();
  s.user_data = "\xff\xfe binary";
  auto made = p->create(s);
  ASSERT_FALSE(made.ok());
  EXPECT_EQ(made.error().code(), ErrorCode::kInvalidArgument) << made.error().toString();
  EXPECT_FALSE(fs::exists(dir_ / "ran"));
}

TEST_F(CommandProviderTest, GarbageOnStdoutIsUnavailable) {
  auto p = provider("echo 'this is not json'");
  auto listed = p->list({});
  ASSERT_FALSE(listed.ok());
  EXPECT_EQ(listed.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(listed.error().message().find("not JSON"), std::string::npos) << listed.error().toString();
  EXPECT_NE(listed.error().message().find("this is not json"), std::string::npos) << listed.error().toString();

  auto array = provider("echo '[1, 2]'")->list({});
  ASSERT_FALSE(array.ok());
  EXPECT_EQ(array.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(array.error().message().find("not an object"), std::string::npos) << array.error().toString();
}

TEST_F(CommandProviderTest, WrongTypesAreUnavailableNamingTheField) {
  struct Case {
    std::string answer, field;
  };
  const std::vector<Case> cases = {
      {R"({})", "instances: missing"},
      {R"({"instances": {}})", "instances: expected an array"},
      {R"({"instances": [7]})", "instances[0]: expected an object"},
      {R"({"instances": [{"state": "running"}]})", "instances[0].id: missing"},
      {R"({"instances": [{"id": 5, "state": "running"}]})", "instances[0].id: expected a string"},
      {R"({"instances": [{"id": "a"}]})", "instances[0].state: missing"},
      {R"({"instances": [{"id": "a", "state": "flying"}]})", "instances[0].state: 'flying' is not one of"},
      {R"({"instances": [{"id": "a", "state": "running", "tags": {"k": 1}}]})", "instances[0].tags.k"},
      {R"({"instances": [{"id": "a", "state": "running", "private_address": []}]})", "instances[0].private_address"},
      {R"({"instances": [{"id": "a", "state": "running", "launched_at": "yesterday"}]})", "instances[0].launched_at"},
  };
  for (const auto& c : cases) {
    auto listed = provider("cat <<'EOF'\n" + c.answer + "\nEOF")->list({});
    ASSERT_FALSE(listed.ok()) << c.answer;
    EXPECT_EQ(listed.error().code(), ErrorCode::kUnavailable) << c.answer;
    EXPECT_NE(listed.error().message().find(c.field), std::string::npos) << listed.error().toString();
  }
  auto made = provider(R"(echo '{"id": 42}')")->create(spec());
  ASSERT_FALSE(made.ok());
  EXPECT_NE(made.error().message().find("id: expected a string"), std::string::npos) << made.error().toString();
  auto other = provider(R"(echo '{"id": "vm-2", "state": "running"}')")->status("vm-1");
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.error().code(), ErrorCode::kUnavailable);
}

TEST_F(CommandProviderTest, AnswersAreReadWithTheirOptionalFields) {
  auto p = provider(R"(cat <<'EOF'
{"instances": [
  {"id": "a", "state": "running", "private_address": "10.0.0.7", "tags": {"k": "v", "x": "y"},
   "launched_at": 1700000000000, "extra": "ignored"},
  {"id": "b", "state": "stopped", "private_address": null, "tags": {"k": "other"}},
  {"id": "c", "state": "terminated"}]}
EOF)");
  auto all = p->list({});
  ASSERT_TRUE(all.ok()) << all.error().toString();
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ(all->at(0).private_address, "10.0.0.7");
  EXPECT_EQ(all->at(0).launched_at, fromUnixMillis(1'700'000'000'000));
  EXPECT_EQ(all->at(1).state, spi::VmState::kStopped);
  EXPECT_FALSE(all->at(1).launched_at.has_value());
  auto tagged = p->list({{"k", "v"}});
  ASSERT_TRUE(tagged.ok());
  ASSERT_EQ(tagged->size(), 1u) << "instances without every tag asked for are dropped";
  EXPECT_EQ(tagged->front().id, "a");
}

TEST_F(CommandProviderTest, ExitStatusesMapToErrorCodes) {
  auto o = options(script("p", "echo \"went wrong with $CODE\" >&2; exit $CODE"));
  auto withCode = [&](int code) {
    auto c = o;
    c.environment = {{"CODE", std::to_string(code)}};
    return provider(std::move(c));
  };
  EXPECT_EQ(withCode(3)->status("vm-1").error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(withCode(3)->create(spec()).error().code(), ErrorCode::kUnavailable);
  EXPECT_TRUE(withCode(3)->destroy("vm-1").ok()) << "destroy: not found means already gone";
  EXPECT_EQ(withCode(2)->create(spec()).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(withCode(4)->create(spec()).error().code(), ErrorCode::kResourceExhausted);
  EXPECT_EQ(withCode(75)->list({}).error().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(withCode(1)->destroy("vm-1").error().code(), ErrorCode::kUnavailable);
  auto quota = withCode(4)->create(spec());
  EXPECT_NE(quota.error().message().find("create"), std::string::npos) << quota.error().toString();
  EXPECT_NE(quota.error().message().find("status 4"), std::string::npos) << quota.error().toString();
  EXPECT_NE(quota.error().message().find("went wrong with 4"), std::string::npos) << quota.error().toString();
}

TEST_F(CommandProviderTest, TheMessageKeepsTheEndOfALongStderr) {
  auto p = provider("head -c 200000 /dev/zero | tr '\\0' x >&2; echo; echo 'the last words' >&2; exit 1");
  auto listed = p->list({});
  ASSERT_FALSE(listed.ok());
  EXPECT_EQ(listed.error().code(), ErrorCode::kUnavailable);
  const std::string& message = listed.error().message();
  EXPECT_NE(message.find("the last words"), std::string::npos) << message.substr(0, 300);
  EXPECT_LT(message.size(), 2048u + 300u) << "only the last 2 KiB of stderr belong in the message";
  EXPECT_NE(message.find("status 1"), std::string::npos);
}

TEST_F(CommandProviderTest, AnOversizedAnswerIsRefused) {
  auto p = provider("printf '{\"instances\": [], \"pad\": \"'; head -c 5000000 /dev/zero | tr '\\0' a; echo '\"}'");
  const auto start = steady_clock::now();
  auto listed = p->list({});
  EXPECT_LT(steady_clock::now() - start, 20s);
  ASSERT_FALSE(listed.ok());
  EXPECT_EQ(listed.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(listed.error().message().find("exceeds 4 MiB"), std::string::npos) << listed.error().toString();
}

TEST_F(CommandProviderTest, AnExecutableRemovedAfterConfigurationIsAFailedPrecondition) {
  const std::string path = script("p", "echo '{}'");
  auto p = provider(options(path));
  fs::remove(path);
  auto made = p->create(spec());
  ASSERT_FALSE(made.ok());
  EXPECT_EQ(made.error().code(), ErrorCode::kFailedPrecondition) << made.error().toString();
  EXPECT_NE(made.error().message().find(path), std::string::npos);
}

TEST_F(CommandProviderTest, ConcurrentCallsOnOneProvider) {
  auto o = options(script("p", "cat > /dev/null; echo '{\"instances\": [{\"id\": \"a\", \"state\": \"running\"}]}'"));
  o.status.clear();  // status() runs list and picks the id.
  auto p = provider(std::move(o));
  std::atomic<int> good{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 5; ++i) good += p->list({}).ok() && p->status("a").ok() ? 1 : 0;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(good.load(), 30);
  errno = 0;
  EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1) << "a child was left unreaped";
  EXPECT_EQ(errno, ECHILD);
}

// ---- options ----

TEST_F(CommandProviderTest, OptionsAreParsedWithDefaults) {
  const std::string path = script("p", "true");
  auto parsed = parseCommandProviderOptions(R"({"create": [")" + path + R"(", "--zone", "a b"], "destroy": [")" + path +
                                            R"("], "list": [")" + path + R"("]})");
  ASSERT_TRUE(parsed.ok()) << parsed.error().toString();
  EXPECT_EQ(parsed->create, (std::vector<std::string>{path, "--zone", "a b"}));
  EXPECT_TRUE(parsed->status.empty());
  EXPECT_EQ(parsed->timeout, 120s);
  EXPECT_EQ(parsed->working_directory, "/");
  EXPECT_TRUE(parsed->environment.empty());

  auto full = parseCommandProviderOptions(R"({"create": [")" + path + R"("], "destroy": [")" + path +
                                          R"("], "list": [")" + path + R"("], "status": [")" + path +
                                          R"("], "timeout_seconds": 3600, "environment": {"A_1": "x"},)" +
                                          R"( "working_directory": ")" + dir_.string() + R"("})");
  ASSERT_TRUE(full.ok()) << full.error().toString();
  EXPECT_EQ(full->timeout, 3600s);
  EXPECT_EQ(full->environment.at("A_1"), "x");
  EXPECT_EQ(full->working_directory, dir_.string());
}

TEST_F(CommandProviderTest, BadOptionsAreRefusedNamingTheField) {
  const std::string path = script("p", "true");
  const std::string plain = (dir_ / "not-executable").string();
  std::ofstream(plain) << "#!/bin/sh\n";
  const std::string ops = R"("destroy": [")" + path + R"("], "list": [")" + path + R"("])";
  auto with = [&](const std::string& fields) { return parseCommandProviderOptions("{" + fields + "}"); };
  struct Case {
    std::string config, expected;
  };
  const std::vector<Case> cases = {
      {R"("create": ["p"], )" + ops, "create[0]: 'p' is not an absolute path"},
      {R"("create": ["/no/such/file"], )" + ops, "create[0]: /no/such/file does not exist"},
      {R"("create": [")" + plain + R"("], )" + ops, "is not executable"},
      {R"("create": [")" + dir_.string() + R"("], )" + ops, "is not a regular file"},
      {R"("create": [], )" + ops, "create: required"},
      {R"("create": [")" + path + R"(", 3], )" + ops, "create[1]: expected a string"},
      {R"("create": ")" + path + R"(", )" + ops, "create: expected an array"},
      {R"("destroy": [")" + path + R"("], "list": [")" + path + R"("])", "create: required"},
      {R"("create": [")" + path + R"("], "surprise": 1, )" + ops, "unknown field 'surprise'"},
      {R"("create": [")" + path + R"("], "timeout_seconds": 0, )" + ops, "timeout_seconds: must be between 1"},
      {R"("create": [")" + path + R"("], "timeout_seconds": 3601, )" + ops, "timeout_seconds: must be between"},
      {R"("create": [")" + path + R"("], "timeout_seconds": 1.5, )" + ops, "timeout_seconds: expected an integer"},
      {R"("create": [")" + path + R"("], "timeout_seconds": "10", )" + ops, "timeout_seconds: expected an integer"},
      {R"("create": [")" + path + R"("], "environment": {"A-B": "x"}, )" + ops, "'A-B' is not a variable name"},
      {R"("create": [")" + path + R"("], "environment": {"A": 1}, )" + ops, "environment.A: expected a string"},
      {R"("create": [")" + path + R"("], "working_directory": "tmp", )" + ops, "working_directory: 'tmp'"},
      {R"("create": [")" + path + R"("], "working_directory": "/no/such", )" + ops, "not an existing directory"},
      {R"("create": [")" + path + R"("], "status": [], )" + ops, "status: an empty array"},
  };
  for (const auto& c : cases) {
    auto parsed = with(c.config);
    ASSERT_FALSE(parsed.ok()) << c.config;
    EXPECT_EQ(parsed.error().code(), ErrorCode::kInvalidArgument) << c.config;
    EXPECT_NE(parsed.error().message().find(c.expected), std::string::npos)
        << parsed.error().toString() << "\n  expected: " << c.expected;
  }
  EXPECT_FALSE(parseCommandProviderOptions("not json").ok());
  EXPECT_FALSE(parseCommandProviderOptions("[]").ok());
  CommandProviderOptions relative;
  relative.create = relative.destroy = relative.list = {"sh"};
  EXPECT_EQ(makeCommandProvider(relative).error().code(), ErrorCode::kInvalidArgument);
}

TEST_F(CommandProviderTest, TheRegistryMakesItAsCommand) {
  spi::VmProviderRegistry registry;
  ASSERT_TRUE(registerCommandProvider(registry).ok());
  EXPECT_EQ(registerCommandProvider(registry).error().code(), ErrorCode::kAlreadyExists);
  EXPECT_EQ(registry.names(), std::vector<std::string>{"command"});
  const std::string path = script("p", R"(echo '{"instances": []}')");
  auto made = registry.create(
      "command", R"({"create": [")" + path + R"("], "destroy": [")" + path + R"("], "list": [")" + path + R"("]})");
  ASSERT_TRUE(made.ok()) << made.error().toString();
  auto listed = (*made)->list({});
  ASSERT_TRUE(listed.ok()) << listed.error().toString();
  EXPECT_EQ(registry.create("command", "{}").error().code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace kasm::command
