// The SSH gateway backend against a real OpenSSH server on loopback (scripts/services/sshd.sh):
// logging in with a password and with a key, the PTY's size, the host key pins, and every failure
// told to the user in an error frame. Tests that need no server (a port that never answers) run
// always.

#include "kasm/ssh/ssh_backend.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "backends/ssh/ssh_frames.hpp"
#include "support/services.hpp"
#include "terminal_test_client.hpp"

namespace kasm::ssh {
namespace {

using namespace std::chrono_literals;
using testing::MemoryPins;
using testing::TerminalTestClient;

struct Sshd {
  std::string host;
  std::uint16_t port = 0;
  std::string user;
  std::string password;
  std::string key_path;
  std::string host_key_path;
};

std::optional<Sshd> sshdFromEnvironment() {
  auto env = [](const char* name) -> std::string {
    const char* v = std::getenv(name);
    return v ? v : "";
  };
  Sshd s;
  const std::string addr = env("KASM_TEST_SSHD_ADDR");
  const auto colon = addr.rfind(':');
  if (colon == std::string::npos) return std::nullopt;
  s.host = addr.substr(0, colon);
  s.port = static_cast<std::uint16_t>(std::stoi(addr.substr(colon + 1)));
  s.user = env("KASM_TEST_SSHD_USER");
  s.password = env("KASM_TEST_SSHD_PASSWORD");
  s.key_path = env("KASM_TEST_SSHD_KEY");
  s.host_key_path = env("KASM_TEST_SSHD_HOST_KEY");
  if (s.user.empty() || s.password.empty() || s.key_path.empty() || s.host_key_path.empty()) return std::nullopt;
  return s;
}

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// "sha256:<hex>" of the key blob in an OpenSSH public key file ("type base64 comment"), computed
// here independently of the backend.
std::string expectedFingerprint(const std::string& pub_path) {
  std::istringstream line(readFile(pub_path));
  std::string type, b64;
  line >> type >> b64;
  std::string blob(b64.size(), '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(blob.data()),
                                reinterpret_cast<const unsigned char*>(b64.data()), static_cast<int>(b64.size()));
  if (n < 0) return "";
  std::size_t padding = 0;
  while (padding < b64.size() && b64[b64.size() - 1 - padding] == '=') ++padding;
  blob.resize(static_cast<std::size_t>(n) - padding);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(blob.data(), blob.size(), md, &len, EVP_sha256(), nullptr);
  std::string hex = "sha256:";
  for (unsigned int i = 0; i < len; ++i) {
    static constexpr char kHex[] = "0123456789abcdef";
    hex += kHex[md[i] >> 4];
    hex += kHex[md[i] & 15];
  }
  return hex;
}

std::string randomMarker() {
  std::random_device rd;
  return "m" + std::to_string(rd()) + std::to_string(rd());
}

// A loopback port with nothing listening (bound, then closed).
std::uint16_t closedPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

std::string errorText(TerminalTestClient& client) {
  auto f = client.nextOf(FrameType::kError);
  return f ? f->payload : "(no error frame; output: " + client.output() + ")";
}

class SshGatewayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    sshd_ = sshdFromEnvironment();
    if (!sshd_) KASM_SKIP_OR_FAIL("no test sshd (KASM_TEST_SSHD_ADDR etc.; scripts/services/sshd.sh)");
  }

  spi::GatewayRequest passwordRequest() const {
    spi::GatewayRequest r;
    r.protocol = "ssh";
    r.host = sshd_->host;
    r.port = sshd_->port;
    r.username = sshd_->user;
    r.password = sshd_->password;
    r.width = 80;
    r.height = 24;
    r.session_id = "test";
    return r;
  }
  std::string pinKey() const { return "ssh:" + sshd_->host + ":" + std::to_string(sshd_->port); }
  std::string address() const { return sshd_->host + ":" + std::to_string(sshd_->port); }

  std::optional<Sshd> sshd_;
  std::unique_ptr<spi::GatewayBackend> backend_ = makeSshBackend();
  MemoryPins pins_;
};

TEST_F(SshGatewayTest, PasswordLoginRunsACommand) {
  TerminalTestClient client(*backend_, passwordRequest(), pins_);
  auto ready = client.nextOf(FrameType::kReady);
  ASSERT_TRUE(ready) << errorText(client);
  EXPECT_NE(ready->payload.find("\"fingerprint\":\"" + expectedFingerprint(sshd_->host_key_path) + "\""),
            std::string::npos)
      << ready->payload;
  EXPECT_NE(ready->payload.find("\"key_type\":\"ssh-ed25519\""), std::string::npos) << ready->payload;

  // The shell computes the marker, so it appears in the output only if the command ran (the PTY
  // echoes what was typed, which has "$((6*7))", not "42").
  const std::string marker = randomMarker();
  client.type("echo kasm-$((6*7))-" + marker + "\r");
  EXPECT_TRUE(client.waitForOutput("kasm-42-" + marker)) << client.output();

  client.type("exit\r");
  auto exit = client.nextOf(FrameType::kExit);
  ASSERT_TRUE(exit) << client.output();
  EXPECT_EQ(*decodeExit(exit->payload), 0);
  EXPECT_FALSE(client.next(5s)) << "the stream ends after the exit frame";
  EXPECT_TRUE(client.served().ok()) << client.served().error().toString();
}

TEST_F(SshGatewayTest, KeyLoginWorksAndReportsTheExitStatus) {
  auto request = passwordRequest();
  request.password.clear();
  request.private_key = readFile(sshd_->key_path);
  ASSERT_FALSE(request.private_key.empty());
  TerminalTestClient client(*backend_, request, pins_);
  ASSERT_TRUE(client.nextOf(FrameType::kReady)) << errorText(client);
  client.type("id -un; exit 3\r");
  auto exit = client.nextOf(FrameType::kExit);
  ASSERT_TRUE(exit) << client.output();
  EXPECT_EQ(*decodeExit(exit->payload), 3);
  EXPECT_NE(client.output().find(sshd_->user), std::string::npos) << client.output();
  EXPECT_TRUE(client.served().ok());
}

TEST_F(SshGatewayTest, TheTerminalHasTheRequestedSizeAndFollowsResizes) {
  auto request = passwordRequest();
  request.width = 91;
  request.height = 33;
  TerminalTestClient client(*backend_, request, pins_);
  ASSERT_TRUE(client.nextOf(FrameType::kReady)) << errorText(client);
  client.type("echo term=$TERM; stty size\r");
  EXPECT_TRUE(client.waitForOutput("33 91")) << client.output();
  EXPECT_TRUE(client.waitForOutput("term=xterm-256color")) << client.output();

  client.resize(120, 41);
  client.type("stty size\r");
  EXPECT_TRUE(client.waitForOutput("41 120")) << client.output();
}

TEST_F(SshGatewayTest, InputAndResizeSentBeforeReadyAreKept) {
  TerminalTestClient client(*backend_, passwordRequest(), pins_);
  // Sent at once, while the gateway is still connecting.
  client.resize(100, 30);
  const std::string marker = randomMarker();
  client.type("stty size; echo early-$((2+3))-" + marker + "\r");
  ASSERT_TRUE(client.nextOf(FrameType::kReady)) << errorText(client);
  EXPECT_TRUE(client.waitForOutput("early-5-" + marker)) << client.output();
  EXPECT_NE(client.output().find("30 100"), std::string::npos) << client.output();
}

TEST_F(SshGatewayTest, WrongPasswordIsToldToTheUser) {
  auto request = passwordRequest();
  request.password = "not-" + sshd_->password;
  TerminalTestClient client(*backend_, request, pins_);
  const std::string text = errorText(client);
  EXPECT_NE(text.find("SSH authentication failed for user " + sshd_->user + " on " + address()), std::string::npos)
      << text;
  EXPECT_EQ(text.find(request.password), std::string::npos) << "the password must never be shown";
  EXPECT_FALSE(client.next(5s)) << "the stream ends after the error frame";
  auto served = client.served();
  ASSERT_FALSE(served.ok());
  EXPECT_EQ(served.error().code(), ErrorCode::kUnauthenticated);
}

// A server that takes passwords only by keyboard-interactive (PAM's prompt) gets the password there.
TEST_F(SshGatewayTest, KeyboardInteractiveIsAnsweredWithThePassword) {
  const char* kbdint = std::getenv("KASM_TEST_SSHD_KBDINT_ADDR");
  if (kbdint == nullptr || *kbdint == '\0') KASM_SKIP_OR_FAIL("no keyboard-interactive test sshd");
  const std::string addr = kbdint;
  auto request = passwordRequest();
  request.port = static_cast<std::uint16_t>(std::stoi(addr.substr(addr.rfind(':') + 1)));
  {
    TerminalTestClient client(*backend_, request, pins_);
    ASSERT_TRUE(client.nextOf(FrameType::kReady)) << errorText(client);
    client.type("exit 5\r");
    auto exit = client.nextOf(FrameType::kExit);
    ASSERT_TRUE(exit);
    EXPECT_EQ(*decodeExit(exit->payload), 5);
  }
  request.password = "not-" + sshd_->password;
  TerminalTestClient refused(*backend_, request, pins_);
  const std::string text = errorText(refused);
  EXPECT_NE(text.find("SSH authentication failed for user " + sshd_->user), std::string::npos) << text;
  EXPECT_NE(text.find("keyboard-interactive"), std::string::npos) << text;
}

TEST_F(SshGatewayTest, AnUnreadablePrivateKeyIsToldToTheUser) {
  auto request = passwordRequest();
  request.password.clear();
  request.private_key = "-----BEGIN OPENSSH PRIVATE KEY-----\nnot a key\n-----END OPENSSH PRIVATE KEY-----\n";
  TerminalTestClient client(*backend_, request, pins_);
  EXPECT_NE(errorText(client).find("could not be read"), std::string::npos);
}

TEST_F(SshGatewayTest, TheHostKeyIsPinnedOnFirstUseAndKeptAfter) {
  const std::string expected = expectedFingerprint(sshd_->host_key_path);
  ASSERT_FALSE(pins_.pinned(pinKey()));
  {
    TerminalTestClient client(*backend_, passwordRequest(), pins_);
    ASSERT_TRUE(client.nextOf(FrameType::kReady)) << errorText(client);
  }
  EXPECT_EQ(pins_.pinned(pinKey()).value_or(""), expected);
  // The same key again: accepted.
  TerminalTestClient again(*backend_, passwordRequest(), pins_);
  EXPECT_TRUE(again.nextOf(FrameType::kReady)) << errorText(again);
}

TEST_F(SshGatewayTest, AChangedHostKeyIsRefusedNamingBothFingerprints) {
  const std::string pinned = "sha256:" + std::string(64, '0');
  pins_.pin(pinKey(), pinned);
  auto request = passwordRequest();
  request.certificate_policy = "ignore";  // Never applies to SSH.
  TerminalTestClient client(*backend_, request, pins_);
  const std::string text = errorText(client);
  EXPECT_NE(text.find("has changed"), std::string::npos) << text;
  EXPECT_NE(text.find(pinned), std::string::npos) << text;
  EXPECT_NE(text.find(expectedFingerprint(sshd_->host_key_path)), std::string::npos) << text;
  auto served = client.served();
  ASSERT_FALSE(served.ok());
  EXPECT_EQ(served.error().code(), ErrorCode::kPermissionDenied);
  EXPECT_EQ(pins_.pinned(pinKey()).value_or(""), pinned) << "the pin is not replaced";
}

TEST_F(SshGatewayTest, PingIsAnsweredWithItsPayload) {
  TerminalTestClient client(*backend_, passwordRequest(), pins_);
  ASSERT_TRUE(client.nextOf(FrameType::kReady)) << errorText(client);
  client.send(encodeFrame(FrameType::kPing, "p-17"));
  auto pong = client.nextOf(FrameType::kPong);
  ASSERT_TRUE(pong);
  EXPECT_EQ(pong->payload, "p-17");
}

TEST_F(SshGatewayTest, TheBrowserLeavingEndsTheConnection) {
  TerminalTestClient client(*backend_, passwordRequest(), pins_);
  ASSERT_TRUE(client.nextOf(FrameType::kReady)) << errorText(client);
  const auto start = std::chrono::steady_clock::now();
  client.closeClient();
  EXPECT_TRUE(client.served().ok());
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

TEST_F(SshGatewayTest, BytesThatAreNotFramesEndTheConnectionWithAReason) {
  TerminalTestClient client(*backend_, passwordRequest(), pins_);
  ASSERT_TRUE(client.nextOf(FrameType::kReady)) << errorText(client);
  client.send("GET / HTTP/1.1\r\n\r\n");
  const std::string text = errorText(client);
  EXPECT_NE(text.find("does not understand"), std::string::npos) << text;
  EXPECT_FALSE(client.served().ok());
}

TEST_F(SshGatewayTest, AShellKilledBySignalEndsWithUnknownStatus) {
  TerminalTestClient client(*backend_, passwordRequest(), pins_);
  ASSERT_TRUE(client.nextOf(FrameType::kReady)) << errorText(client);
  client.type("kill -9 $$\r");
  auto exit = client.nextOf(FrameType::kExit);
  ASSERT_TRUE(exit) << client.output();
  EXPECT_EQ(*decodeExit(exit->payload), -1);
  EXPECT_TRUE(client.served().ok());
}

TEST_F(SshGatewayTest, LargeOutputArrivesWholeBeforeTheExit) {
  TerminalTestClient client(*backend_, passwordRequest(), pins_);
  ASSERT_TRUE(client.nextOf(FrameType::kReady)) << errorText(client);
  // 1.5 million lines of "y": the PTY turns each "\n" into "\r\n".
  client.type("yes | head -n 1500000; exit 7\r");
  auto exit = client.nextOf(FrameType::kExit, 60s);
  ASSERT_TRUE(exit);
  EXPECT_EQ(*decodeExit(exit->payload), 7);
  EXPECT_GE(std::count(client.output().begin(), client.output().end(), 'y'), 1'500'000);
}

TEST_F(SshGatewayTest, ALongPasteReachesTheShell) {
  TerminalTestClient client(*backend_, passwordRequest(), pins_);
  ASSERT_TRUE(client.nextOf(FrameType::kReady)) << errorText(client);
  client.type("stty -echo; wc -c\r");
  // 2000 lines of 99 characters and a newline (200 kB, so several 64 KiB frames), then end-of-file.
  std::string paste;
  for (int i = 0; i < 2000; ++i) {
    paste.append(99, static_cast<char>('a' + i % 26));
    paste.push_back('\r');
  }
  std::string frames;
  appendChunked(frames, FrameType::kInput, paste);
  client.send(frames);
  client.type("\x04");
  EXPECT_TRUE(client.waitForOutput("200000")) << client.output().substr(0, 2000);
}

TEST_F(SshGatewayTest, TheServerDroppingTheConnectionIsToldToTheUser) {
  TerminalTestClient client(*backend_, passwordRequest(), pins_);
  ASSERT_TRUE(client.nextOf(FrameType::kReady)) << errorText(client);
  client.type("kill -9 $PPID\r");  // The server's process for this connection.
  const std::string text = errorText(client);
  EXPECT_NE(text.find("The connection to the SSH server " + address() + " was lost"), std::string::npos) << text;
  EXPECT_EQ(client.served().error().code(), ErrorCode::kUnavailable);
}

// The relay sleeps in poll() while nothing happens: an idle terminal costs no CPU.
TEST_F(SshGatewayTest, AnIdleTerminalDoesNotSpin) {
  TerminalTestClient client(*backend_, passwordRequest(), pins_);
  ASSERT_TRUE(client.nextOf(FrameType::kReady)) << errorText(client);
  client.waitForOutput("$", 5s);
  rusage before{}, after{};
  ::getrusage(RUSAGE_SELF, &before);
  std::this_thread::sleep_for(1s);
  ::getrusage(RUSAGE_SELF, &after);
  auto micros = [](const rusage& r) {
    return (r.ru_utime.tv_sec + r.ru_stime.tv_sec) * 1'000'000L + r.ru_utime.tv_usec + r.ru_stime.tv_usec;
  };
  EXPECT_LT(micros(after) - micros(before), 200'000L) << "CPU used by an idle terminal in 1 s";
}

std::size_t openDescriptors() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

// Every way a connection ends closes what it opened (and nothing twice: libssh closes a socket it
// was given itself on some failures).
TEST_F(SshGatewayTest, NoDescriptorIsLeftOpen) {
  const std::size_t before = openDescriptors();
  {
    TerminalTestClient ok(*backend_, passwordRequest(), pins_);
    ASSERT_TRUE(ok.nextOf(FrameType::kReady)) << errorText(ok);
    ok.type("exit\r");
    ASSERT_TRUE(ok.nextOf(FrameType::kExit));
  }
  {
    TerminalTestClient left(*backend_, passwordRequest(), pins_);
    ASSERT_TRUE(left.nextOf(FrameType::kReady));
  }
  {
    auto request = passwordRequest();
    request.password = "wrong";
    TerminalTestClient refused(*backend_, request, pins_);
    (void)refused.served();
  }
  {
    TerminalTestClient killed(*backend_, passwordRequest(), pins_);
    ASSERT_TRUE(killed.nextOf(FrameType::kReady));
    killed.type("kill -9 $PPID\r");  // The server's session process: the connection breaks.
    (void)killed.served();
  }
  {
    MemoryPins other;
    other.pin(pinKey(), "sha256:00");
    TerminalTestClient changed(*backend_, passwordRequest(), other);
    (void)changed.served();
  }
  EXPECT_EQ(openDescriptors(), before);
}

// ---- without a server ----

TEST(SshGatewayNoServer, AServerThatIsDownIsToldToTheUser) {
  auto backend = makeSshBackend();
  MemoryPins pins;
  spi::GatewayRequest request;
  request.protocol = "ssh";
  request.host = "127.0.0.1";
  request.port = closedPort();
  request.username = "someone";
  request.password = "secret";
  TerminalTestClient client(*backend, request, pins);
  const std::string text = errorText(client);
  EXPECT_NE(text.find("refused the connection"), std::string::npos) << text;
  EXPECT_NE(text.find("127.0.0.1:" + std::to_string(request.port)), std::string::npos) << text;
  auto served = client.served();
  ASSERT_FALSE(served.ok());
  EXPECT_EQ(served.error().code(), ErrorCode::kUnavailable);
}

TEST(SshGatewayNoServer, AServerThatNeverAnswersTimesOut) {
  // A listening socket nobody accepts on: TCP connects (the kernel's backlog), SSH never starts.
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(listener, 4), 0);
  socklen_t len = sizeof a;
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&a), &len);

  SshBackendOptions options;
  options.connect_timeout = 1s;
  auto backend = makeSshBackend(options);
  MemoryPins pins;
  spi::GatewayRequest request;
  request.protocol = "ssh";
  request.host = "127.0.0.1";
  request.port = ntohs(a.sin_port);
  request.username = "someone";
  request.password = "secret";
  const auto start = std::chrono::steady_clock::now();
  TerminalTestClient client(*backend, request, pins);
  const std::string text = errorText(client);
  EXPECT_NE(text.find("did not answer in time"), std::string::npos) << text;
  EXPECT_NE(text.find("the limit is 1 s"), std::string::npos) << text;
  auto served = client.served();
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(served.ok());
  EXPECT_EQ(served.error().code(), ErrorCode::kDeadlineExceeded);
  EXPECT_GE(took, 900ms);
  EXPECT_LT(took, 5s);
  ::close(listener);
}

TEST(SshGatewayNoServer, ARequestWithoutAUserIsRefused) {
  auto backend = makeSshBackend();
  MemoryPins pins;
  spi::GatewayRequest request;
  request.protocol = "ssh";
  request.host = "127.0.0.1";
  request.port = 22;
  TerminalTestClient client(*backend, request, pins);
  EXPECT_NE(errorText(client).find("no user name"), std::string::npos);
}

}  // namespace
}  // namespace kasm::ssh
