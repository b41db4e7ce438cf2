// StaticFiles against a real directory tree in a temporary directory: files, the index and the
// single-page fallback, caching headers, and every traversal trick we know of.

#include "kasm/net/static_files.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace kasm::net {
namespace {

namespace fs = std::filesystem;

void writeFile(const fs::path& p, const std::string& content) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << content;
}

HttpRequest get(std::string path, std::string method = "GET") {
  HttpRequest r;
  r.method = std::move(method);
  r.target = path;
  r.path = std::move(path);
  return r;
}

std::string header(const HttpResponse& r, std::string_view name) {
  auto v = r.headers.find(name);
  return v ? std::string(*v) : std::string();
}

class StaticFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string templ = (fs::temp_directory_path() / "kasm-static-XXXXXX").string();
    ASSERT_NE(::mkdtemp(templ.data()), nullptr);
    base_ = templ;
    root_ = base_ / "dist";
    writeFile(root_ / "index.html", "<!doctype html><title>app</title>");
    writeFile(root_ / "assets" / "index-abc123.js", "console.log(1)");
    writeFile(root_ / "assets" / "style-def456.css", "body{}");
    writeFile(root_ / "favicon.svg", "<svg/>");
    writeFile(root_ / "docs" / "index.html", "docs index");
    writeFile(root_ / "a b.txt", "spaced");
    writeFile(root_ / ".env", "SECRET=1");
    writeFile(base_ / "secret.txt", "outside the root");
    auto files = StaticFiles::open({.root = root_.string()});
    ASSERT_TRUE(files.ok()) << files.error().message();
    files_.emplace(std::move(*files));
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(base_, ec);
  }

  fs::path base_;
  fs::path root_;
  std::optional<StaticFiles> files_;
};

TEST_F(StaticFilesTest, ServesIndexForRoot) {
  HttpResponse r = files_->serve(get("/"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "<!doctype html><title>app</title>");
  EXPECT_EQ(header(r, "Content-Type"), "text/html; charset=utf-8");
  EXPECT_EQ(header(r, "Cache-Control"), "no-cache");
  EXPECT_EQ(header(r, "X-Content-Type-Options"), "nosniff");
  EXPECT_FALSE(header(r, "ETag").empty());
}

TEST_F(StaticFilesTest, ServesFilesWithContentTypes) {
  HttpResponse js = files_->serve(get("/assets/index-abc123.js"));
  EXPECT_EQ(js.status, 200);
  EXPECT_EQ(js.body, "console.log(1)");
  EXPECT_EQ(header(js, "Content-Type"), "text/javascript; charset=utf-8");
  EXPECT_EQ(files_->serve(get("/assets/style-def456.css")).headers.find("Content-Type"), "text/css; charset=utf-8");
  EXPECT_EQ(files_->serve(get("/favicon.svg")).headers.find("Content-Type"), "image/svg+xml");
  HttpResponse spaced = files_->serve(get("/a%20b.txt"));
  EXPECT_EQ(spaced.status, 200);
  EXPECT_EQ(spaced.body, "spaced");
}

TEST_F(StaticFilesTest, ContentTypeByExtension) {
  EXPECT_EQ(contentTypeFor("x.HTML"), "text/html; charset=utf-8");
  EXPECT_EQ(contentTypeFor("/a/b/c.woff2"), "font/woff2");
  EXPECT_EQ(contentTypeFor("x.wasm"), "application/wasm");
  EXPECT_EQ(contentTypeFor("noext"), "application/octet-stream");
  EXPECT_EQ(contentTypeFor("dir.d/noext"), "application/octet-stream");
  EXPECT_EQ(contentTypeFor("x.unknown"), "application/octet-stream");
}

TEST_F(StaticFilesTest, HashedAssetsAreImmutable) {
  HttpResponse r = files_->serve(get("/assets/index-abc123.js"));
  EXPECT_EQ(header(r, "Cache-Control"), "public, max-age=31536000, immutable");
  EXPECT_EQ(header(files_->serve(get("/favicon.svg")), "Cache-Control"), "no-cache");
}

TEST_F(StaticFilesTest, DirectoryServesItsIndex) {
  EXPECT_EQ(files_->serve(get("/docs/")).body, "docs index");
  EXPECT_EQ(files_->serve(get("/docs")).body, "docs index");
}

TEST_F(StaticFilesTest, SinglePageFallbackForClientRoutes) {
  HttpResponse r = files_->serve(get("/admin/agents"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "<!doctype html><title>app</title>");
  EXPECT_EQ(header(r, "Cache-Control"), "no-cache");
  EXPECT_EQ(files_->serve(get("/session/abc")).status, 200);
}

TEST_F(StaticFilesTest, NoFallbackForMissingFilesOrApiPaths) {
  EXPECT_EQ(files_->serve(get("/assets/missing-123.js")).status, 404);
  EXPECT_EQ(files_->serve(get("/missing.png")).status, 404);
  EXPECT_EQ(files_->serve(get("/api/v1/nothing")).status, 404);
  EXPECT_EQ(files_->serve(get("/api")).status, 404);
  EXPECT_EQ(files_->serve(get("/desktop/abc/")).status, 404);
}

TEST_F(StaticFilesTest, FallbackCanBeTurnedOff) {
  auto files = StaticFiles::open({.root = root_.string(), .spa_fallback = false});
  ASSERT_TRUE(files.ok());
  EXPECT_EQ(files->serve(get("/admin/agents")).status, 404);
  EXPECT_EQ(files->serve(get("/")).status, 200);
}

TEST_F(StaticFilesTest, ETagRevalidationGives304) {
  HttpResponse first = files_->serve(get("/assets/index-abc123.js"));
  const std::string etag = header(first, "ETag");
  ASSERT_FALSE(etag.empty());
  HttpRequest again = get("/assets/index-abc123.js");
  again.headers.add("If-None-Match", etag);
  HttpResponse second = files_->serve(again);
  EXPECT_EQ(second.status, 304);
  EXPECT_TRUE(second.body.empty());
  EXPECT_EQ(header(second, "ETag"), etag);
  EXPECT_EQ(header(second, "Cache-Control"), "public, max-age=31536000, immutable");

  HttpRequest listed = get("/assets/index-abc123.js");
  listed.headers.add("if-none-match", "\"other\", W/" + etag);
  EXPECT_EQ(files_->serve(listed).status, 304);
  HttpRequest star = get("/assets/index-abc123.js");
  star.headers.add("If-None-Match", "*");
  EXPECT_EQ(files_->serve(star).status, 304);

  HttpRequest stale = get("/assets/index-abc123.js");
  stale.headers.add("If-None-Match", "\"0-0\"");
  EXPECT_EQ(files_->serve(stale).status, 200);
}

TEST_F(StaticFilesTest, ETagChangesWhenTheFileChanges) {
  const std::string before = header(files_->serve(get("/favicon.svg")), "ETag");
  writeFile(root_ / "favicon.svg", "<svg></svg>");
  const std::string after = header(files_->serve(get("/favicon.svg")), "ETag");
  EXPECT_NE(before, after);
}

TEST_F(StaticFilesTest, HeadHasHeadersButNoBody) {
  HttpResponse r = files_->serve(get("/assets/index-abc123.js", "HEAD"));
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(r.body.empty());
  EXPECT_EQ(header(r, "Content-Type"), "text/javascript; charset=utf-8");
  EXPECT_FALSE(header(r, "ETag").empty());
  EXPECT_EQ(header(r, "Content-Length"), std::to_string(files_->serve(get("/assets/index-abc123.js")).body.size()));
  EXPECT_EQ(files_->serve(get("/admin", "HEAD")).status, 200);
}

TEST_F(StaticFilesTest, OtherMethodsGet405) {
  for (const char* method : {"POST", "PUT", "DELETE", "PATCH", "OPTIONS"}) {
    HttpResponse r = files_->serve(get("/", method));
    EXPECT_EQ(r.status, 405) << method;
    EXPECT_EQ(header(r, "Allow"), "GET, HEAD") << method;
  }
}

TEST_F(StaticFilesTest, RefusesTraversal) {
  for (const char* path : {"/../secret.txt", "/assets/../../secret.txt", "/%2e%2e/secret.txt", "/%2E%2E/secret.txt",
                           "/assets/%2e%2e/%2e%2e/secret.txt", "/..%2fsecret.txt", "/%2e%2e%2fsecret.txt",
                           "/./index.html", "/..", "/%2e"}) {
    HttpResponse r = files_->serve(get(path));
    EXPECT_EQ(r.status, 400) << path;
    EXPECT_EQ(r.body.find("outside"), std::string::npos) << path;
  }
}

TEST_F(StaticFilesTest, RefusesBackslashesNulAndBadEscapes) {
  EXPECT_EQ(files_->serve(get("/..\\secret.txt")).status, 400);
  EXPECT_EQ(files_->serve(get("/assets\\index-abc123.js")).status, 400);
  EXPECT_EQ(files_->serve(get("/%5c..%5csecret.txt")).status, 400);
  EXPECT_EQ(files_->serve(get("/index.html%00.js")).status, 400);
  EXPECT_EQ(files_->serve(get(std::string("/index.html\0x", 13))).status, 400);
  EXPECT_EQ(files_->serve(get("/%zz")).status, 400);
  EXPECT_EQ(files_->serve(get("/%2")).status, 400);
  EXPECT_EQ(files_->serve(get("relative")).status, 400);
  EXPECT_EQ(files_->serve(get("")).status, 400);
}

TEST_F(StaticFilesTest, HiddenFilesAreNotServed) {
  EXPECT_EQ(files_->serve(get("/.env")).status, 404);
  EXPECT_EQ(files_->serve(get("/%2eenv")).status, 404);
}

TEST_F(StaticFilesTest, SymlinksEscapingTheRootAreRefused) {
  fs::create_symlink(base_ / "secret.txt", root_ / "leak.txt");
  fs::create_directory_symlink(base_, root_ / "up");
  HttpResponse leak = files_->serve(get("/leak.txt"));
  EXPECT_EQ(leak.status, 404);
  EXPECT_EQ(leak.body.find("outside the root"), std::string::npos);
  EXPECT_EQ(files_->serve(get("/up/secret.txt")).status, 404);
  // A link that stays inside the root is fine.
  fs::create_symlink(root_ / "favicon.svg", root_ / "icon.svg");
  EXPECT_EQ(files_->serve(get("/icon.svg")).status, 200);
}

TEST_F(StaticFilesTest, RootMayItselfBeASymlink) {
  fs::create_directory_symlink(root_, base_ / "current");
  auto files = StaticFiles::open({.root = (base_ / "current").string()});
  ASSERT_TRUE(files.ok());
  EXPECT_EQ(files->root(), fs::canonical(root_).string());
  EXPECT_EQ(files->serve(get("/favicon.svg")).status, 200);
}

TEST_F(StaticFilesTest, OpenRejectsBadRoots) {
  EXPECT_FALSE(StaticFiles::open({.root = ""}).ok());
  EXPECT_FALSE(StaticFiles::open({.root = (base_ / "missing").string()}).ok());
  EXPECT_FALSE(StaticFiles::open({.root = (base_ / "secret.txt").string()}).ok());
  EXPECT_FALSE(StaticFiles::open({.root = root_.string(), .index = "../x.html"}).ok());
}

TEST_F(StaticFilesTest, OversizedFilesAreNotRead) {
  auto files = StaticFiles::open({.root = root_.string(), .max_file_bytes = 4});
  ASSERT_TRUE(files.ok());
  EXPECT_EQ(files->serve(get("/assets/index-abc123.js")).status, 404);
}

}  // namespace
}  // namespace kasm::net
