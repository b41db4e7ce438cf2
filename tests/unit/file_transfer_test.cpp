// File transfer: the tar codec the agent speaks with the engine, the remote agent protocol's file
// commands, and the manager's rules (owner only, group switches, the size limit, names).

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "agent/tar.hpp"
#include "fake_agent_link.hpp"
#include "kasm/agent/remote_link.hpp"
#include "kasm/kasm.hpp"

namespace kasm {
namespace {

using agent::detail::readFirstTarEntry;
using agent::detail::tarFileInDirectory;

// ---- tar --------------------------------------------------------------------------------------

std::string binary(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + 7) & 0xff);
  return s;
}

TEST(Tar, AFileInItsDirectoryRoundTrips) {
  const std::string data = binary(1500);
  const std::string tar = tarFileInDirectory("Uploads", "report 2026.pdf", data, {1000, 1000, 1700000000});
  EXPECT_EQ(tar.size() % 512, 0u);
  auto dir = readFirstTarEntry(tar);
  ASSERT_TRUE(dir.ok()) << dir.error().toString();
  EXPECT_EQ(dir->name, "Uploads/");
  EXPECT_EQ(dir->type, '5');
  EXPECT_EQ(dir->mode, 0755u);
  // The file follows the directory's header (no data blocks for a directory).
  auto file = readFirstTarEntry(std::string_view(tar).substr(512));
  ASSERT_TRUE(file.ok()) << file.error().toString();
  EXPECT_EQ(file->name, "Uploads/report 2026.pdf");
  EXPECT_EQ(file->type, '0');
  EXPECT_EQ(file->mode, 0644u);
  EXPECT_EQ(file->uid, 1000u);
  EXPECT_EQ(file->gid, 1000u);
  EXPECT_EQ(file->mtime, 1700000000);
  EXPECT_EQ(file->data, data);
}

TEST(Tar, LongNamesTravelInAPaxRecord) {
  const std::string name(200, 'n');
  const std::string tar = tarFileInDirectory("Uploads", name, "x", {});
  auto file = readFirstTarEntry(std::string_view(tar).substr(512));
  ASSERT_TRUE(file.ok()) << file.error().toString();
  EXPECT_EQ(file->name, "Uploads/" + name);
  EXPECT_EQ(file->data, "x");
}

TEST(Tar, MalformedArchivesAreErrorsNotCrashes) {
  const std::string tar = tarFileInDirectory("d", "f", binary(2000), {});
  const std::string_view file_part = std::string_view(tar).substr(512);
  EXPECT_EQ(readFirstTarEntry("").error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(readFirstTarEntry(std::string(1024, '\0')).error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(readFirstTarEntry(file_part.substr(0, 100)).error().code(), ErrorCode::kInvalidArgument);
  // Cut inside the data: the size runs past the end.
  EXPECT_EQ(readFirstTarEntry(file_part.substr(0, 1000)).error().code(), ErrorCode::kInvalidArgument);
  std::string tampered(file_part);
  tampered[10] ^= 1;  // The name changes; the checksum no longer matches.
  EXPECT_EQ(readFirstTarEntry(tampered).error().code(), ErrorCode::kInvalidArgument);
}

// ---- an agent that keeps files in memory -------------------------------------------------------

class FilesAgent final : public spi::AgentLink {
 public:
  Result<spi::ProvisionResult> provision(const spi::ProvisionRequest& r) override { return base.provision(r); }
  Result<void> stop(const SessionId& s) override { return base.stop(s); }
  Result<void> destroy(const SessionId& s) override { return base.destroy(s); }
  Result<void> pause(const SessionId& s) override { return base.pause(s); }
  Result<void> resume(const SessionId& s) override { return base.resume(s); }
  Result<spi::ExecResult> exec(const SessionId& s, const spi::ExecRequest& r) override { return base.exec(s, r); }
  Result<std::vector<spi::AgentSessionView>> sessions() override { return base.sessions(); }

  Result<void> putFile(const SessionId& s, const std::string& dir, const std::string& name,
                       std::string_view data) override {
    std::lock_guard lock(mu);
    files[s.str() + ":" + dir + "/" + name] = std::string(data);
    return {};
  }
  Result<std::string> getFile(const SessionId& s, const std::string& path, std::int64_t max_bytes) override {
    std::lock_guard lock(mu);
    auto it = files.find(s.str() + ":" + path);
    if (it == files.end()) return notFound(path + " does not exist");
    if (static_cast<std::int64_t>(it->second.size()) > max_bytes) return resourceExhausted("too large");
    return it->second;
  }
  Result<std::vector<spi::FileEntry>> listFiles(const SessionId& s, const std::string& dir) override {
    std::lock_guard lock(mu);
    std::vector<spi::FileEntry> out;
    const std::string prefix = s.str() + ":" + dir + "/";
    for (const auto& [key, data] : files) {
      if (key.starts_with(prefix)) {
        out.push_back(
            {key.substr(prefix.size()), static_cast<std::int64_t>(data.size()), TimePoint(std::chrono::seconds(5))});
      }
    }
    return out;
  }

  testing::FakeAgentLink base;
  std::mutex mu;
  std::map<std::string, std::string> files;  // "<session>:<path>" -> content
};

// ---- the remote agent protocol ----------------------------------------------------------------

TEST(RemoteAgentLinkFiles, FilesRoundTripThroughTheJsonProtocol) {
  agent::RemoteAgentLink link(std::chrono::seconds(5));
  FilesAgent local;
  std::atomic<bool> stop{false};
  std::thread loop([&] {
    while (!stop.load()) {
      auto c = link.nextCommand(std::chrono::milliseconds(20));
      if (c.ok() && *c) (void)link.complete((*c)->id, agent::executeCommand(local, (*c)->json));
    }
  });
  const SessionId s("s1");
  const std::string data = binary(70000);  // Every byte value, NULs included.
  ASSERT_TRUE(link.putFile(s, "/home/kasm-user/Downloads", "a b.bin", data).ok());
  auto back = link.getFile(s, "/home/kasm-user/Downloads/a b.bin", 1 << 20);
  ASSERT_TRUE(back.ok()) << back.error().toString();
  EXPECT_EQ(*back, data);
  auto listed = link.listFiles(s, "/home/kasm-user/Downloads");
  ASSERT_TRUE(listed.ok()) << listed.error().toString();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ(listed->front().name, "a b.bin");
  EXPECT_EQ(listed->front().size, 70000);
  EXPECT_EQ(listed->front().modified, TimePoint(std::chrono::seconds(5)));
  // Errors keep their codes; an agent without profile support says so.
  EXPECT_EQ(link.getFile(s, "/nope", 10).error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(link.getFile(s, "/home/kasm-user/Downloads/a b.bin", 10).error().code(), ErrorCode::kResourceExhausted);
  EXPECT_EQ(link.removeProfile("/profiles/alice").error().code(), ErrorCode::kFailedPrecondition);  // SPI default.
  // Malformed file commands are refused, not crashes.
  for (const char* bad : {R"({"op":"put_file","session_id":"s1","dir":"/d","name":"n","data":"%%%"})",
                          R"({"op":"get_file","session_id":"s1","path":"/d"})",
                          R"({"op":"get_file","session_id":"s1","path":"/d","max_bytes":-1})",
                          R"({"op":"list_files","session_id":"s1"})", R"({"op":"remove_profile"})"}) {
    EXPECT_NE(agent::executeCommand(local, bad).find(R"("ok":false)"), std::string::npos) << bad;
  }
  stop.store(true);
  loop.join();
}

// ---- the manager's rules -----------------------------------------------------------------------

class FileTransferTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = makeMemoryStore();
    repo_ = std::make_unique<Repository>(*store_);
    manager_ = std::make_unique<Manager>(*store_, clock_, random_);
    ASSERT_TRUE(manager_->start().ok());
    Zone z;
    z.id = ZoneId("east");
    z.name = "East";
    ASSERT_TRUE(manager_->upsertZone(z).ok());
    Workspace w;
    w.id = WorkspaceId("desktop");
    w.friendly_name = "Desktop";
    w.image = "desktop:1";
    w.resources = Resources::fromCores(1, Resources::kGiB);
    ASSERT_TRUE(manager_->upsertWorkspace(w).ok());
    Group g;
    g.id = GroupId("all");
    g.name = "All";
    g.settings.allow_uploads = true;
    g.settings.allow_downloads = true;
    g.settings.file_transfer_limit_mb = 1;
    ASSERT_TRUE(repo_->insert(g).ok());
    for (const char* name : {"alice", "bob"}) {
      User u;
      u.id = UserId(name);
      u.username = name;
      u.group_ids = {g.id};
      ASSERT_TRUE(repo_->insert(u).ok());
    }
    Agent a;
    a.id = AgentId("a1");
    a.hostname = "a1.local";
    a.zone_id = ZoneId("east");
    auto reg = manager_->registerAgent(a);
    ASSERT_TRUE(reg.ok());
    manager_->attachAgentLink(a.id, agent_);
    AgentCheckIn c{a.id, reg->token, Resources::fromCores(8, 8 * Resources::kGiB)};
    c.images = {"desktop:1"};
    ASSERT_TRUE(manager_->checkIn(c).ok());
    auto s = manager_->requestSession(SessionRequest{UserId("alice"), WorkspaceId("desktop"), ZoneId("east"), {}});
    ASSERT_TRUE(s.ok()) << s.error().toString();
    session_ = s->id;
  }

  void setGroup(const std::function<void(GroupSettings&)>& f) {
    auto g = repo_->get<Group>("all");
    f(g->value.settings);
    ASSERT_TRUE(repo_->update(g->value, g->version).ok());
  }

  ManualClock clock_;
  SeededRandom random_{7};
  std::unique_ptr<spi::Store> store_;
  std::unique_ptr<Repository> repo_;
  std::unique_ptr<Manager> manager_;
  std::shared_ptr<FilesAgent> agent_ = std::make_shared<FilesAgent>();
  SessionId session_;
};

TEST_F(FileTransferTest, TheOwnerUploadsIntoUploadsAndDownloadsFromDownloads) {
  auto policy = manager_->fileTransferPolicy(session_, UserId("alice"));
  ASSERT_TRUE(policy.ok()) << policy.error().toString();
  EXPECT_TRUE(policy->uploads);
  EXPECT_TRUE(policy->downloads);
  EXPECT_EQ(policy->limit_bytes, 1024 * 1024);
  EXPECT_EQ(policy->upload_dir, "/home/kasm-user/Uploads");

  auto up = manager_->uploadFile(session_, UserId("alice"), "notes.txt", "hello");
  ASSERT_TRUE(up.ok()) << up.error().toString();
  EXPECT_EQ(up->size, 5);
  EXPECT_EQ(agent_->files.at(session_.str() + ":/home/kasm-user/Uploads/notes.txt"), "hello");

  agent_->files[session_.str() + ":/home/kasm-user/Downloads/out.csv"] = "a,b\n";
  auto listed = manager_->listDownloads(session_, UserId("alice"));
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ(listed->front().name, "out.csv");
  auto down = manager_->downloadFile(session_, UserId("alice"), "out.csv");
  ASSERT_TRUE(down.ok()) << down.error().toString();
  EXPECT_EQ(*down, "a,b\n");
  auto missing = manager_->downloadFile(session_, UserId("alice"), "gone.csv");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(missing.error().message().find("~/Downloads"), std::string::npos);
}

TEST_F(FileTransferTest, OnlyTheOwnerAndOnlyWhatTheGroupAllows) {
  auto other = manager_->uploadFile(session_, UserId("bob"), "x", "y");
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.error().code(), ErrorCode::kPermissionDenied);
  EXPECT_EQ(manager_->downloadFile(session_, UserId("bob"), "x").error().code(), ErrorCode::kPermissionDenied);
  EXPECT_EQ(manager_->fileTransferPolicy(session_, UserId("bob")).error().code(), ErrorCode::kPermissionDenied);

  setGroup([](GroupSettings& g) { g.allow_uploads = false; });
  auto refused = manager_->uploadFile(session_, UserId("alice"), "x", "y");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code(), ErrorCode::kPermissionDenied);
  EXPECT_NE(refused.error().message().find("allow_uploads"), std::string::npos);
  setGroup([](GroupSettings& g) { g.allow_downloads = false; });
  EXPECT_EQ(manager_->listDownloads(session_, UserId("alice")).error().code(), ErrorCode::kPermissionDenied);
  EXPECT_TRUE(agent_->files.empty());
}

TEST_F(FileTransferTest, TooLargeOrBadlyNamedFilesAreRefusedWithTheReason) {
  auto big = manager_->uploadFile(session_, UserId("alice"), "big.bin", std::string(1024 * 1024 + 1, 'x'));
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.error().code(), ErrorCode::kResourceExhausted);
  EXPECT_NE(big.error().message().find("1 MB"), std::string::npos) << big.error().message();
  agent_->files[session_.str() + ":/home/kasm-user/Downloads/big.iso"] = std::string(1024 * 1024 + 1, 'x');
  EXPECT_EQ(manager_->downloadFile(session_, UserId("alice"), "big.iso").error().code(), ErrorCode::kResourceExhausted);
  const std::vector<std::string> names = {"", ".", "..", "../etc/passwd", "a/b", "tab\there", std::string(256, 'n')};
  for (const auto& name : names) {
    EXPECT_EQ(manager_->uploadFile(session_, UserId("alice"), name, "x").error().code(), ErrorCode::kInvalidArgument)
        << name;
    EXPECT_EQ(manager_->downloadFile(session_, UserId("alice"), name).error().code(), ErrorCode::kInvalidArgument)
        << name;
  }
  EXPECT_TRUE(agent_->files.size() == 1);
  // A session that ended moves nothing.
  ASSERT_TRUE(manager_->destroySession(session_).ok());
  EXPECT_EQ(manager_->uploadFile(session_, UserId("alice"), "late.txt", "x").error().code(),
            ErrorCode::kFailedPrecondition);
}

TEST(GroupSettingsFiles, TheTransferLimitIsBounded) {
  GroupSettings g;
  EXPECT_EQ(g.file_transfer_limit_mb, 100);
  EXPECT_TRUE(g.validate().ok());
  g.file_transfer_limit_mb = 0;
  EXPECT_FALSE(g.validate().ok());
  g.file_transfer_limit_mb = 1025;
  EXPECT_FALSE(g.validate().ok());
}

}  // namespace
}  // namespace kasm
