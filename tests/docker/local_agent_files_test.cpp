// LocalAgent's file transfer on the real engine: what an upload writes and with which owner, what a
// download hands over, and the tricks a session's user could play with symbolic links and modes.

#include <thread>

#include "docker/docker_test_support.hpp"
#include "kasm/agent/local_agent.hpp"

namespace kasm::testing {
namespace {

using agent::LocalAgent;
using agent::LocalAgentOptions;

class LocalAgentFilesTest : public DockerTest {
 protected:
  void SetUp() override {
    DockerTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    options_.agent_id = AgentId("agent-files-" + run_id_);
    options_.probe_attempts = 200;
    options_.stop_timeout = std::chrono::seconds(1);
    cleanupLabels({{agent::kAgentIdLabel, options_.agent_id.str()}});
    agent_ = std::make_unique<LocalAgent>(*runtime_, clock_, options_);
    spi::ProvisionRequest r;
    r.session_id = session_ = SessionId(run_id_ + "-files");
    r.workspace.id = WorkspaceId("ws-busybox");
    r.workspace.image = image_;
    r.workspace.port = 8080;
    r.workspace.protocol = SessionProtocol::kHttp;
    r.resources = {250, 32 * Resources::kMiB, 0};
    auto p = agent_->provision(r);
    ASSERT_TRUE(p.ok()) << p.error().toString();
    // The image's user (uid 1000) has a home with a Downloads directory, as the desktop images do.
    root("mkdir -p /home/kasm-user/Downloads && chown -R 1000:1000 /home/kasm-user");
  }

  std::string root(const std::string& line) {
    auto r = agent_->exec(session_, {{"sh", "-c", line}});
    EXPECT_TRUE(r.ok()) << r.error().toString();
    return r.ok() ? r->output : std::string();
  }
  std::string asUser(const std::string& line) {
    spi::ExecRequest req{{"sh", "-c", line}};
    req.user = "1000";
    auto r = agent_->exec(session_, req);
    EXPECT_TRUE(r.ok()) << r.error().toString();
    return r.ok() ? r->output : std::string();
  }

  ManualClock clock_;
  LocalAgentOptions options_;
  std::unique_ptr<LocalAgent> agent_;
  SessionId session_;
};

std::string everyByte(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 151 + 3) & 0xff);
  return s;
}

TEST_F(LocalAgentFilesTest, AnUploadLandsInUploadsOwnedByTheImagesUser) {
  const std::string data = everyByte(300 * 1024);
  auto put = agent_->putFile(session_, "/home/kasm-user/Uploads", "report 2026.bin", data);
  ASSERT_TRUE(put.ok()) << put.error().toString();
  EXPECT_EQ(root("stat -c '%u:%g %a %s' '/home/kasm-user/Uploads/report 2026.bin'"), "1000:1000 644 307200\n");
  EXPECT_EQ(root("stat -c '%u:%g %F' /home/kasm-user/Uploads"), "1000:1000 directory\n");
  // The user can change it, and a second upload of the same name replaces it.
  asUser("echo changed >> '/home/kasm-user/Uploads/report 2026.bin'");
  ASSERT_TRUE(agent_->putFile(session_, "/home/kasm-user/Uploads", "report 2026.bin", "v2").ok());
  EXPECT_EQ(root("cat '/home/kasm-user/Uploads/report 2026.bin'"), "v2");
  // A directory whose parent is missing is refused, and bad names never reach the engine.
  EXPECT_EQ(agent_->putFile(session_, "/nowhere/Uploads", "x", "y").error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(agent_->putFile(session_, "/home/kasm-user/Uploads", "../x", "y").error().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(agent_->putFile(session_, "/home/kasm-user/../../etc", "x", "y").error().code(),
            ErrorCode::kInvalidArgument);
}

TEST_F(LocalAgentFilesTest, AnUploadNeverWritesThroughALinkTheUserPlanted) {
  const std::string before = root("md5sum /etc/passwd");
  // ~/Uploads made a link to /etc, and a file link inside a real Uploads pointing at /etc/group.
  asUser("ln -s /etc /home/kasm-user/Uploads");
  ASSERT_TRUE(agent_->putFile(session_, "/home/kasm-user/Uploads", "passwd", "owned\n").ok());
  EXPECT_EQ(root("md5sum /etc/passwd"), before);
  EXPECT_EQ(root("stat -c %F /home/kasm-user/Uploads"), "directory\n");
  EXPECT_EQ(root("cat /home/kasm-user/Uploads/passwd"), "owned\n");
  const std::string group = root("md5sum /etc/group");
  asUser("ln -s /etc/group /home/kasm-user/Uploads/group");
  ASSERT_TRUE(agent_->putFile(session_, "/home/kasm-user/Uploads", "group", "owned\n").ok());
  EXPECT_EQ(root("md5sum /etc/group"), group);
}

TEST_F(LocalAgentFilesTest, ADownloadHandsOverWhatTheUserCouldReadAndNothingElse) {
  const std::string data = everyByte(200 * 1024);
  ASSERT_TRUE(agent_->putFile(session_, "/home/kasm-user", "seed.bin", data).ok());
  asUser("cp /home/kasm-user/seed.bin '/home/kasm-user/Downloads/out file.bin'");
  auto got = agent_->getFile(session_, "/home/kasm-user/Downloads/out file.bin", 1 << 20);
  ASSERT_TRUE(got.ok()) << got.error().toString();
  EXPECT_EQ(*got, data);

  auto small = agent_->getFile(session_, "/home/kasm-user/Downloads/out file.bin", 1000);
  ASSERT_FALSE(small.ok());
  EXPECT_EQ(small.error().code(), ErrorCode::kResourceExhausted);
  EXPECT_EQ(agent_->getFile(session_, "/home/kasm-user/Downloads/none", 100).error().code(), ErrorCode::kNotFound);

  // A root-only file, a link to one, and a directory are not handed over.
  root("echo secret > /root-only && chmod 600 /root-only");
  asUser("ln -s /root-only /home/kasm-user/Downloads/link && mkdir /home/kasm-user/Downloads/dir");
  EXPECT_EQ(agent_->getFile(session_, "/root-only", 100).error().code(), ErrorCode::kPermissionDenied);
  EXPECT_EQ(agent_->getFile(session_, "/home/kasm-user/Downloads/link", 100).error().code(),
            ErrorCode::kPermissionDenied);
  EXPECT_EQ(agent_->getFile(session_, "/home/kasm-user/Downloads/dir", 100).error().code(),
            ErrorCode::kPermissionDenied);
  // Downloads itself made a link to / gives nothing of root's either.
  asUser("mv /home/kasm-user/Downloads /home/kasm-user/D && ln -s / /home/kasm-user/Downloads");
  EXPECT_EQ(agent_->getFile(session_, "/home/kasm-user/Downloads/root-only", 100).error().code(),
            ErrorCode::kPermissionDenied);
}

TEST_F(LocalAgentFilesTest, ListingShowsTheUsersRegularFilesNewestFirst) {
  asUser(
      "cd /home/kasm-user/Downloads && echo 1 > old.txt && touch -d '2020-01-01 00:00:00' old.txt && "
      "printf 12345 > 'new file.txt' && ln -s old.txt link.txt && mkdir sub && echo h > .hidden");
  auto listed = agent_->listFiles(session_, "/home/kasm-user/Downloads");
  ASSERT_TRUE(listed.ok()) << listed.error().toString();
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].name, "new file.txt");
  EXPECT_EQ((*listed)[0].size, 5);
  EXPECT_EQ((*listed)[1].name, "old.txt");
  EXPECT_LT((*listed)[1].modified, (*listed)[0].modified);
  auto none = agent_->listFiles(session_, "/home/kasm-user/Nothing");
  ASSERT_TRUE(none.ok()) << none.error().toString();
  EXPECT_TRUE(none->empty());
}

TEST_F(LocalAgentFilesTest, FilesOfASessionThatIsNotOursAreRefused) {
  EXPECT_EQ(agent_->putFile(SessionId("nobody-" + run_id_), "/tmp", "x", "y").error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(agent_->getFile(SessionId("nobody-" + run_id_), "/tmp/x", 1).error().code(), ErrorCode::kNotFound);
}

TEST_F(LocalAgentFilesTest, AStreamHandsOutputOverLiveAndEndsWhenTheReaderStops) {
  std::string got;
  int pieces = 0;
  const auto started = std::chrono::steady_clock::now();
  auto streamed = agent_->execStream(session_, {{"sh", "-c", "while :; do echo tick; sleep 0.05; done"}},
                                     [&](std::string_view data) {
                                       got.append(data);
                                       return ++pieces < 4;
                                     });
  ASSERT_TRUE(streamed.ok()) << streamed.error().toString();
  EXPECT_GE(got.size(), 4 * std::string("tick\n").size() - 5);
  EXPECT_EQ(got.rfind("tick\n", 0), 0u) << got;
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
  // The loop dies of SIGPIPE at its next write once nobody reads.
  std::string left;
  for (int i = 0; i < 50; ++i) {
    left = root("grep -l 'while [:]' /proc/[0-9]*/cmdline 2>/dev/null | wc -l");
    if (left == "0\n") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(left, "0\n");

  // A command that ends by itself ends the stream; what it said on stderr is the error.
  got.clear();
  auto ended = agent_->execStream(session_, {{"sh", "-c", "echo out; echo 'no sound here' >&2; exit 3"}},
                                  [&](std::string_view data) {
                                    got.append(data);
                                    return true;
                                  });
  EXPECT_EQ(got, "out\n");
  ASSERT_FALSE(ended.ok());
  EXPECT_NE(ended.error().message().find("no sound here"), std::string::npos) << ended.error().toString();
  auto missing = agent_->execStream(session_, {{"no-such-program"}}, [](std::string_view) { return true; });
  EXPECT_FALSE(missing.ok());
}

TEST_F(LocalAgentFilesTest, AnInputReachesTheProcessAndClosingItEndsIt) {
  {
    auto input = agent_->execWithInput(session_, {{"sh", "-c", "cat > /tmp/fed"}});
    ASSERT_TRUE(input.ok()) << input.error().toString();
    ASSERT_TRUE((*input)->write("hello ").ok());
    const std::string big = everyByte(256 * 1024);  // More than a pipe holds at once.
    ASSERT_TRUE((*input)->write(big).ok());
  }  // Dropped: end of file, and the process is gone.
  std::string size;
  for (int i = 0; i < 50; ++i) {
    size = root("wc -c < /tmp/fed");
    if (size == std::to_string(6 + 256 * 1024) + "\n") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(size, std::to_string(6 + 256 * 1024) + "\n");
  EXPECT_EQ(root("head -c 6 /tmp/fed"), "hello ");

  // A process that never reads is ended when its input is dropped.
  {
    auto input = agent_->execWithInput(session_, {{"sh", "-c", "while [:] || :; do sleep 0.05; done"}});
    ASSERT_TRUE(input.ok()) << input.error().toString();
  }
  std::string left;
  for (int i = 0; i < 50; ++i) {
    left = root("grep -l 'while [[]:[]]' /proc/[0-9]*/cmdline 2>/dev/null | wc -l");
    if (left == "0\n") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(left, "0\n");

  // A program that is not there: the input says so at its first write at the latest.
  auto missing = agent_->execWithInput(session_, {{"no-such-program"}});
  if (missing.ok()) {
    Result<void> w = okResult();
    for (int i = 0; i < 20 && w.ok(); ++i) {
      w = (*missing)->write("x");
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_FALSE(w.ok());
  }
}

}  // namespace
}  // namespace kasm::testing
