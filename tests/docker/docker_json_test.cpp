// Pure logic of the Docker backend (no engine): the create body, the run-config merge rules, pull
// progress parsing, answer mapping and the small encodings.

#include <gtest/gtest.h>

#include "backends/docker/json_mapping.hpp"

namespace kasm::docker::detail {
namespace {

json::value parse(std::string_view s) {
  return json::parse(s);
}

TEST(RunConfigMerge, ObjectsMergeRecursivelyArraysAndScalarsReplaceNullDeletes) {
  auto merged = mergeRunConfigText(
      R"({"Image":"a","Env":["A=1"],"Labels":{"x":"1","y":"2"},"HostConfig":{"Memory":1,"Binds":["/a:/a"]}})",
      R"({"Env":["B=2"],"Labels":{"y":"3","z":"4"},"Hostname":"h","HostConfig":{"Binds":["/b:/b"],"Memory":null}})");
  ASSERT_TRUE(merged.ok()) << merged.error().toString();
  EXPECT_EQ(parse(*merged), parse(R"({"Image":"a","Env":["B=2"],"Labels":{"x":"1","y":"3","z":"4"},
                                      "HostConfig":{"Binds":["/b:/b"]},"Hostname":"h"})"));
}

TEST(RunConfigMerge, TopLevelHostConfigFieldsMergeIntoHostConfig) {
  auto merged = mergeRunConfigText(R"({"HostConfig":{"Memory":1}})",
                                   R"({"ShmSize":64,"CapAdd":["SYS_ADMIN"],"Privileged":true,"User":"1000"})");
  ASSERT_TRUE(merged.ok());
  EXPECT_EQ(
      parse(*merged),
      parse(R"({"User":"1000","HostConfig":{"Memory":1,"ShmSize":64,"CapAdd":["SYS_ADMIN"],"Privileged":true}})"));
  // An explicit HostConfig entry wins over the same field hoisted from the top level.
  auto both = mergeRunConfigText(R"({})", R"({"ShmSize":1,"HostConfig":{"ShmSize":2}})");
  ASSERT_TRUE(both.ok());
  EXPECT_EQ(parse(*both), parse(R"({"HostConfig":{"ShmSize":2}})"));
}

TEST(RunConfigMerge, EmptyTextIsNoOverride) {
  auto merged = mergeRunConfigText(R"({"Image":"a"})", "  \n");
  ASSERT_TRUE(merged.ok());
  EXPECT_EQ(parse(*merged), parse(R"({"Image":"a"})"));
}

TEST(RunConfigMerge, RejectsInvalidJsonAndNonObjects) {
  for (const char* bad : {"{", "[1,2]", "\"text\"", "42", R"({"HostConfig": [1]})", "{\"a\":1} trailing"}) {
    auto merged = mergeRunConfigText("{}", bad);
    ASSERT_FALSE(merged.ok()) << bad;
    EXPECT_EQ(merged.error().code(), ErrorCode::kInvalidArgument) << bad;
    EXPECT_NE(merged.error().message().find("run_config_json"), std::string::npos);
  }
}

spi::ContainerSpec sampleSpec() {
  spi::ContainerSpec s;
  s.name = "kasm-1";
  s.image = "kasm/desktop:1";
  s.resources = {2500, 2 * Resources::kGiB, 1};
  s.cpu_allocation = CpuAllocationMethod::kQuotas;
  s.environment = {{"VNC_PW", "pw"}};
  s.labels = {{"kasm.managed", "true"}, {"kasm.session_id", "1"}};
  s.command = {"run", "--fast"};
  s.port = 6901;
  s.volumes = {{"/data/u1", "/home/kasm-user", VolumeMode::kReadWrite}, {"shared", "/shared", VolumeMode::kReadOnly}};
  s.network = "kasm-net";
  return s;
}

TEST(CreateBody, CarriesLimitsPortsVolumesLabelsAndEnvironment) {
  auto body = buildCreateBody(sampleSpec());
  ASSERT_TRUE(body.ok()) << body.error().toString();
  EXPECT_EQ(json::value(*body), parse(R"({
    "Image": "kasm/desktop:1",
    "Cmd": ["run", "--fast"],
    "Env": ["VNC_PW=pw"],
    "Labels": {"kasm.managed": "true", "kasm.session_id": "1", "kasm.session_port": "6901"},
    "ExposedPorts": {"6901/tcp": {}},
    "HostConfig": {
      "Memory": 2147483648,
      "NanoCpus": 2500000000,
      "DeviceRequests": [{"Driver": "", "Count": 1, "Capabilities": [["gpu"]]}],
      "Binds": ["/data/u1:/home/kasm-user", "shared:/shared:ro"],
      "NetworkMode": "kasm-net",
      "PortBindings": {"6901/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]}
    }
  })"));
}

// A workspace's run-config Env adds variables; it cannot drop the ones kasm sets (the session's VNC
// password) nor change their values.
TEST(CreateBody, RunConfigEnvMergesWithKasmsEnvironment) {
  auto s = sampleSpec();
  s.run_config_json = R"({"Env": ["TZ=Europe/Paris", "VNC_PW=attacker", "LANG"]})";
  auto body = buildCreateBody(s);
  ASSERT_TRUE(body.ok()) << body.error().toString();
  EXPECT_EQ(body->at("Env"), parse(R"(["TZ=Europe/Paris", "LANG", "VNC_PW=pw"])"));
  s.run_config_json = R"({"Env": null})";
  auto cleared = buildCreateBody(s);
  ASSERT_TRUE(cleared.ok());
  EXPECT_EQ(cleared->at("Env"), parse(R"(["VNC_PW=pw"])"));
}

TEST(CreateBody, CpuMethods) {
  auto s = sampleSpec();
  s.cpu_allocation = CpuAllocationMethod::kShares;
  auto shares = buildCreateBody(s);
  ASSERT_TRUE(shares.ok());
  EXPECT_EQ(shares->at("HostConfig").at("CpuShares"), 2560);
  EXPECT_FALSE(shares->at("HostConfig").as_object().contains("NanoCpus"));
  s.cpu_allocation = CpuAllocationMethod::kInherit;
  auto inherit = buildCreateBody(s);
  ASSERT_TRUE(inherit.ok());
  EXPECT_FALSE(inherit->at("HostConfig").as_object().contains("CpuShares"));
  EXPECT_FALSE(inherit->at("HostConfig").as_object().contains("NanoCpus"));
}

TEST(CreateBody, KasmFieldsWinOverTheRunConfig) {
  auto s = sampleSpec();
  s.run_config_json = R"({"Image":"evil","Labels":{"kasm.session_id":"2","other":"x"},
                          "PortBindings":{"6901/tcp":[{"HostIp":"0.0.0.0","HostPort":"80"}]},
                          "ShmSize":1024})";
  auto body = buildCreateBody(s);
  ASSERT_TRUE(body.ok());
  EXPECT_EQ(body->at("Image"), "kasm/desktop:1");
  EXPECT_EQ(body->at("Labels").at("kasm.session_id"), "1");
  EXPECT_EQ(body->at("Labels").at("other"), "x");
  EXPECT_EQ(body->at("HostConfig").at("ShmSize"), 1024);
  EXPECT_EQ(body->at("HostConfig").at("PortBindings").at("6901/tcp"),
            parse(R"([{"HostIp":"127.0.0.1","HostPort":""}])"));
}

TEST(CreateBody, RejectsBadSpecs) {
  auto s = sampleSpec();
  s.image.clear();
  EXPECT_EQ(buildCreateBody(s).error().code(), ErrorCode::kInvalidArgument);
  s = sampleSpec();
  s.resources.memory_bytes = -1;
  EXPECT_EQ(buildCreateBody(s).error().code(), ErrorCode::kInvalidArgument);
  s = sampleSpec();
  s.volumes = {{"/a", "relative", VolumeMode::kReadWrite}};
  EXPECT_EQ(buildCreateBody(s).error().code(), ErrorCode::kInvalidArgument);
  s = sampleSpec();
  s.environment = {{"A=B", "c"}};
  EXPECT_EQ(buildCreateBody(s).error().code(), ErrorCode::kInvalidArgument);
}

TEST(PullProgress, ParsesEngineLines) {
  auto downloading = parsePullLine(
      R"({"status":"Downloading","progressDetail":{"current":1024,"total":4096},"progress":"[==> ]","id":"a1b2"})");
  ASSERT_EQ(downloading.kind, PullEvent::Kind::kProgress);
  EXPECT_EQ(downloading.progress.layer, "a1b2");
  EXPECT_EQ(downloading.progress.status, "Downloading");
  EXPECT_EQ(downloading.progress.current, 1024);
  EXPECT_EQ(downloading.progress.total, 4096);

  auto complete = parsePullLine(R"({"status":"Pull complete","progressDetail":{},"id":"a1b2"})");
  ASSERT_EQ(complete.kind, PullEvent::Kind::kProgress);
  EXPECT_EQ(complete.progress.total, 0);

  auto digest = parsePullLine(R"({"status":"Digest: sha256:abc"})");
  EXPECT_EQ(digest.kind, PullEvent::Kind::kProgress);
  EXPECT_TRUE(digest.progress.layer.empty());

  auto error = parsePullLine(R"({"errorDetail":{"message":"manifest unknown"},"error":"manifest unknown"})");
  ASSERT_EQ(error.kind, PullEvent::Kind::kError);
  EXPECT_EQ(error.error, "manifest unknown");
  auto detail_only = parsePullLine(R"({"errorDetail":{"message":"boom"}})");
  EXPECT_EQ(detail_only.error, "boom");

  EXPECT_EQ(parsePullLine("").kind, PullEvent::Kind::kIgnored);
  EXPECT_EQ(parsePullLine("not json").kind, PullEvent::Kind::kIgnored);
  EXPECT_EQ(parsePullLine("{}").kind, PullEvent::Kind::kIgnored);
}

TEST(PullProgress, StreamParserSplitsLinesAcrossChunks) {
  const std::string stream =
      "{\"status\":\"Pulling fs layer\",\"id\":\"l1\"}\r\n"
      "{\"status\":\"Downloading\",\"progressDetail\":{\"current\":5,\"total\":10},\"id\":\"l1\"}\n"
      "{\"status\":\"Pull complete\",\"id\":\"l1\"}";
  for (std::size_t step : {1u, 3u, 7u, 1000u}) {
    PullStreamParser parser;
    std::vector<PullEvent> events;
    for (std::size_t i = 0; i < stream.size(); i += step) {
      parser.feed(std::string_view(stream).substr(i, step), [&](PullEvent e) { events.push_back(std::move(e)); });
    }
    parser.finish([&](PullEvent e) { events.push_back(std::move(e)); });
    ASSERT_EQ(events.size(), 3u) << step;
    EXPECT_EQ(events[0].progress.status, "Pulling fs layer");
    EXPECT_EQ(events[1].progress.current, 5);
    EXPECT_EQ(events[2].progress.status, "Pull complete");
  }
}

TEST(PullProgress, ErrorTextMapsToCodes) {
  EXPECT_EQ(pullError("r", "manifest for r:1 not found: manifest unknown").code(), ErrorCode::kNotFound);
  EXPECT_EQ(pullError("r", "pull access denied for r, repository does not exist").code(), ErrorCode::kNotFound);
  EXPECT_EQ(pullError("r", "unauthorized: authentication required").code(), ErrorCode::kUnauthenticated);
  EXPECT_EQ(pullError("r", "Head \"http://127.0.0.1:5/v2/x/manifests/1\": no basic auth credentials").code(),
            ErrorCode::kUnauthenticated);
  EXPECT_EQ(pullError("r", "Get \"http://127.0.0.1:1/v2/\": dial tcp 127.0.0.1:1: connect: connection refused").code(),
            ErrorCode::kUnavailable);
}

TEST(EngineAnswers, ErrorsMapToCodes) {
  auto code = [](long status) { return engineError({status, R"({"message":"m"})", ""}, "op").code(); };
  EXPECT_EQ(code(400), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code(404), ErrorCode::kNotFound);
  EXPECT_EQ(code(409), ErrorCode::kAlreadyExists);
  EXPECT_EQ(code(500), ErrorCode::kInternal);
  EXPECT_EQ(code(503), ErrorCode::kUnavailable);
  EXPECT_EQ(engineError({404, R"({"message":"No such container: x"})", ""}, "inspect x").message(),
            "inspect x: No such container: x");
  EXPECT_EQ(engineMessage({500, "plain text\n", ""}), "plain text");
  EXPECT_EQ(parseEngineJson("{bad", "op").error().code(), ErrorCode::kInternal);
}

TEST(EngineAnswers, InspectMapsStateLimitsLabelsAndTheSessionPort) {
  auto inspect = parse(R"({
    "Id": "abc", "Name": "/kasm-1",
    "Config": {"Image": "img:1", "Labels": {"kasm.session_port": "6901", "k": "v"}},
    "State": {"Status": "exited", "ExitCode": 137},
    "HostConfig": {"NanoCpus": 500000000, "CpuShares": 0, "Memory": 1048576},
    "NetworkSettings": {"Ports": {
      "22/tcp": [{"HostIp": "127.0.0.1", "HostPort": "40001"}],
      "6901/tcp": [{"HostIp": "0.0.0.0", "HostPort": "40002"}],
      "80/tcp": null}}
  })");
  auto info = containerFromInspect(inspect.as_object());
  EXPECT_EQ(info.id, "abc");
  EXPECT_EQ(info.name, "kasm-1");
  EXPECT_EQ(info.image, "img:1");
  EXPECT_EQ(info.status, spi::ContainerStatus::kExited);
  EXPECT_EQ(info.exit_code, 137);
  EXPECT_EQ(info.nano_cpus, 500000000);
  EXPECT_EQ(info.memory_bytes, 1048576);
  EXPECT_EQ(info.labels.at("k"), "v");
  EXPECT_EQ(info.published, "127.0.0.1:40002");  // The labelled port; a wildcard bind is reached on loopback.
}

TEST(EngineAnswers, ImagesInfoAndStats) {
  auto images = imagesFromList(parse(R"([
    {"Id":"sha256:1","RepoTags":["a:1","b:2"],"Size":10},
    {"Id":"sha256:2","RepoTags":["<none>:<none>"],"Size":20},
    {"Id":"sha256:3","RepoTags":null,"Size":30}])")
                                   .as_array());
  ASSERT_EQ(images.size(), 3u);
  EXPECT_EQ(images[0].tags, (std::vector<std::string>{"a:1", "b:2"}));
  EXPECT_TRUE(images[1].tags.empty());
  EXPECT_TRUE(images[2].tags.empty());
  EXPECT_EQ(images[2].size_bytes, 30);

  auto host = hostFromInfo(
      parse(R"({"NCPU":8,"MemTotal":17179869184,"OperatingSystem":"Debian","ServerVersion":"20.10"})").as_object());
  EXPECT_EQ(host.total, (Resources{8000, 16 * Resources::kGiB, 0}));
  EXPECT_EQ(host.os, "Debian");
  EXPECT_EQ(host.engine_version, "20.10");

  auto stats = statsFromJson(parse(R"({
    "cpu_stats": {"cpu_usage": {"total_usage": 3000}, "system_cpu_usage": 20000, "online_cpus": 4},
    "precpu_stats": {"cpu_usage": {"total_usage": 1000}, "system_cpu_usage": 10000},
    "memory_stats": {"usage": 5000, "limit": 9000, "stats": {"cache": 1000}}})")
                                 .as_object());
  EXPECT_DOUBLE_EQ(stats.cpu_cores, 0.8);
  EXPECT_EQ(stats.memory_used_bytes, 4000);
  EXPECT_EQ(stats.memory_limit_bytes, 9000);
}

TEST(Encodings, ReferencesVersionsBase64AndStreams) {
  using P = std::pair<std::string, std::string>;
  EXPECT_EQ(splitImageReference("busybox"), (P{"busybox", "latest"}));
  EXPECT_EQ(splitImageReference("kasm/desktop:1.14"), (P{"kasm/desktop", "1.14"}));
  EXPECT_EQ(splitImageReference("127.0.0.1:5000/a/b"), (P{"127.0.0.1:5000/a/b", "latest"}));
  EXPECT_EQ(splitImageReference("127.0.0.1:5000/a/b:2"), (P{"127.0.0.1:5000/a/b", "2"}));
  EXPECT_EQ(splitImageReference("a/b@sha256:ff"), (P{"a/b@sha256:ff", ""}));

  EXPECT_LT(compareApiVersions("1.9", "1.41"), 0);
  EXPECT_EQ(compareApiVersions("1.41", "1.41"), 0);
  EXPECT_GT(compareApiVersions("1.43", "1.41"), 0);
  EXPECT_GT(compareApiVersions("2.0", "1.99"), 0);

  EXPECT_EQ(base64UrlEncode(""), "");
  EXPECT_EQ(base64UrlEncode("f"), "Zg==");
  EXPECT_EQ(base64UrlEncode("fo"), "Zm8=");
  EXPECT_EQ(base64UrlEncode("foo"), "Zm9v");
  EXPECT_EQ(base64UrlEncode("\xfb\xff"), "-_8=");  // URL-safe alphabet, as the engine expects.
  EXPECT_EQ(urlEncode("a b/c=d"), "a%20b%2Fc%3Dd");

  std::string framed;
  auto frame = [&](char stream, std::string_view payload) {
    framed += stream;
    framed += std::string(3, '\0');
    for (int shift : {24, 16, 8, 0}) framed += static_cast<char>((payload.size() >> shift) & 0xff);
    framed += payload;
  };
  frame(1, "out\n");
  frame(2, "err\n");
  EXPECT_EQ(demultiplexStream(framed, 1000), "out\nerr\n");
  EXPECT_EQ(demultiplexStream(framed, 5), "out\ne");
  EXPECT_EQ(demultiplexStream("plain tty text", 1000), "plain tty text");

  // A live stream arrives in pieces that cut headers and payloads anywhere.
  frame(1, std::string(300, 'x'));
  for (std::size_t piece : {1u, 3u, 7u, 64u}) {
    StreamDemux demux;
    std::string out, err;
    for (std::size_t i = 0; i < framed.size(); i += piece) {
      demux.feed(std::string_view(framed).substr(i, piece),
                 [&](int stream, std::string_view p) { (stream == 1 ? out : err).append(p); });
    }
    EXPECT_EQ(out, "out\n" + std::string(300, 'x')) << piece;
    EXPECT_EQ(err, "err\n") << piece;
  }
}

}  // namespace
}  // namespace kasm::docker::detail
