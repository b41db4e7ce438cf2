#include <gtest/gtest.h>

#include "kasm/kasm.hpp"

namespace kasm {
namespace {

Workspace validWorkspace() {
  Workspace w;
  w.id = WorkspaceId("w1");
  w.friendly_name = "Desktop";
  w.image = "kasm/desktop:1.0";
  w.resources = Resources::fromCores(2, 2 * Resources::kGiB);
  return w;
}

void expectInvalid(const Result<void>& r, std::string_view field) {
  ASSERT_FALSE(r.ok()) << "expected a complaint about " << field;
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(r.error().message().find(field), std::string::npos) << r.error().message();
}

TEST(Workspace, ValidContainerWorkspacePasses) {
  EXPECT_TRUE(validWorkspace().validate().ok());
}

TEST(Workspace, BadValuesNameTheField) {
  auto w = validWorkspace();
  w.image = "";
  expectInvalid(w.validate(), "workspace.image");
  w = validWorkspace();
  w.resources.millicores = 0;
  expectInvalid(w.validate(), "workspace.resources.millicores");
  w = validWorkspace();
  w.resources.memory_bytes = -5;
  expectInvalid(w.validate(), "workspace.resources.memory_bytes");
  w = validWorkspace();
  w.resources.gpus = -1;
  expectInvalid(w.validate(), "workspace.resources.gpus");
  w = validWorkspace();
  w.run_config_json = "{not json";
  expectInvalid(w.validate(), "workspace.run_config_json");
  w.run_config_json = "[1,2]";
  expectInvalid(w.validate(), "workspace.run_config_json");
  w = validWorkspace();
  w.volumes.push_back({"/home/../etc", "/data", VolumeMode::kReadOnly, {}, {}});
  expectInvalid(w.validate(), "workspace.volumes[0].source");
  w = validWorkspace();
  w.volumes.push_back({"/srv/share", "relative", VolumeMode::kReadOnly, {}, {}});
  expectInvalid(w.validate(), "workspace.volumes[0].target");
  w = validWorkspace();
  w.port = 0;
  expectInvalid(w.validate(), "workspace.port");
  w = validWorkspace();
  w.friendly_name = "";
  expectInvalid(w.validate(), "workspace.friendly_name");
  w = validWorkspace();
  w.session_time_limit = Duration(-1);
  expectInvalid(w.validate(), "workspace.session_time_limit");
  w = validWorkspace();
  w.include_labels[""] = "x";
  expectInvalid(w.validate(), "workspace.include_labels");
  w = validWorkspace();
  w.exec_config.first_launch.environment["A=B"] = "1";
  expectInvalid(w.validate(), "workspace.exec_config.first_launch.environment");
}

TEST(Workspace, OtherTypesNeedTheirTarget) {
  Workspace link;
  link.id = WorkspaceId("l");
  link.friendly_name = "Docs";
  link.type = WorkspaceType::kLink;
  link.link_url = "javascript:alert(1)";
  expectInvalid(link.validate(), "workspace.link_url");
  link.link_url = "https://example.org/docs";
  EXPECT_TRUE(link.validate().ok());

  Workspace server = link;
  server.type = WorkspaceType::kServer;
  expectInvalid(server.validate(), "workspace.server_id");
  server.server_id = ServerId("srv1");
  EXPECT_TRUE(server.validate().ok());
}

TEST(Workspace, JsonRoundTripKeepsEveryField) {
  auto w = validWorkspace();
  w.categories = {"Office", "Dev"};
  w.cpu_allocation = CpuAllocationMethod::kShares;
  w.run_config_json = R"({"hostname":"kasm"})";
  w.exec_config.first_launch = {"echo hi", "root", true, "/tmp", {{"A", "1"}}};
  w.volumes.push_back({"/srv/share", "/share", VolumeMode::kReadOnly, 1000, 1000});
  w.restrict_to_zone = ZoneId("east");
  w.include_labels = {{"gpu", "yes"}};
  w.session_time_limit = std::chrono::hours(2);
  w.created_at = fromUnixMillis(1234);
  auto back = fromJson<Workspace>(toJson(w));
  ASSERT_TRUE(back.ok()) << back.error().toString();
  EXPECT_EQ(*back, w);
}

TEST(Json, WrongTypesAndUnknownEnumsNameTheField) {
  auto r = fromJson<Workspace>(R"({"id":"w","resources":{"millicores":"lots"}})");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(r.error().message().find("resources.millicores"), std::string::npos);
  auto e = fromJson<Zone>(R"({"id":"z","load_strategy":"random-ish"})");
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message().find("least_load"), std::string::npos);  // Lists the choices.
  auto m = fromJson<Zone>("{\"id\":");
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.error().message().find("malformed JSON"), std::string::npos);
  auto range = fromJson<Workspace>(R"({"port": 70000})");
  ASSERT_FALSE(range.ok());
  EXPECT_NE(range.error().message().find("port"), std::string::npos);
  auto bad_id = fromJson<Session>(R"({"id":"../../etc/passwd"})");
  ASSERT_FALSE(bad_id.ok());
}

// Boost.JSON 1.81 reads some numbers as a neighbour of the nearest double; what is decoded must
// still encode to text that decodes to the same value (found by the model_json fuzz target).
TEST(Json, DoublesReadBackAsWhatWasWritten) {
  for (const char* text : {"5E0090", "0.1", "1e-300", "123456789.123456789", "4.9406564584124654e-324"}) {
    auto a = fromJson<Agent>(std::string(R"({"cpu_utilization":)") + text + "}");
    ASSERT_TRUE(a.ok()) << text << ": " << a.error().toString();
    const std::string once = toJson(*a);
    auto back = fromJson<Agent>(once);
    ASSERT_TRUE(back.ok()) << once;
    EXPECT_EQ(back->cpu_utilization, a->cpu_utilization) << text << " -> " << once;
    EXPECT_EQ(toJson(*back), once);
  }
  // Where no value reads back as itself (50E090 goes round in a cycle), the number is refused.
  auto cycle = fromJson<Agent>(R"({"cpu_utilization":50E090})");
  if (cycle.ok()) {
    EXPECT_EQ(fromJson<Agent>(toJson(*cycle))->cpu_utilization, cycle->cpu_utilization);
  } else {
    EXPECT_NE(cycle.error().message().find("cpu_utilization is a number that cannot be stored exactly"),
              std::string::npos)
        << cycle.error().toString();
  }
}

TEST(Zone, Validation) {
  Zone z;
  z.id = ZoneId("east");
  z.name = "East";
  EXPECT_TRUE(z.validate().ok());
  z.name = "";
  expectInvalid(z.validate(), "zone.name");
  z.name = "East";
  z.proxy.path = "desktop";
  expectInvalid(z.validate(), "zone.proxy.path");
  z.proxy.path = "/desktop";
  z.gateway = "10.0.0.9:4822";
  EXPECT_TRUE(z.validate().ok());
  for (const char* bad : {"10.0.0.9", "http://10.0.0.9:4822", ":4822", "host:", "host:12a"}) {
    z.gateway = bad;
    expectInvalid(z.validate(), "zone.gateway");
  }
}

TEST(Agent, CapacityAppliesOverridesAndReservations) {
  Agent a;
  a.id = AgentId("a1");
  a.hostname = "host1";
  a.zone_id = ZoneId("east");
  a.reported = Resources::fromCores(8, 32 * Resources::kGiB, 2);
  a.overrides.millicores = 16000;  // Oversubscribe CPU 2x.
  a.reserved = Resources::fromCores(4, 40 * Resources::kGiB);
  EXPECT_EQ(a.capacity().millicores, 16000);
  EXPECT_EQ(a.capacity().memory_bytes, 32 * Resources::kGiB);
  EXPECT_EQ(a.available().millicores, 12000);
  EXPECT_EQ(a.available().memory_bytes, 0);  // Over-reserved memory clamps at zero.
  EXPECT_TRUE(a.validate().ok());
  a.kind = AgentKind::kAutoscaled;
  expectInvalid(a.validate(), "agent.autoscale_config_id");
  a.kind = AgentKind::kStatic;
  a.cpu_utilization = 1.5;
  expectInvalid(a.validate(), "agent.cpu_utilization");
  a.cpu_utilization = 0.2;
  a.overrides.gpus = -1;
  expectInvalid(a.validate(), "agent.overrides");
}

constexpr SessionState kAllStates[] = {SessionState::kRequested, SessionState::kProvisioning, SessionState::kRunning,
                                       SessionState::kPaused,    SessionState::kStopping,     SessionState::kStopped,
                                       SessionState::kDestroyed, SessionState::kFailed};

TEST(SessionStateMachine, EveryPairIsCheckedAgainstTheTable) {
  using S = SessionState;
  const std::set<std::pair<S, S>> allowed = {
      {S::kRequested, S::kProvisioning}, {S::kRequested, S::kFailed},    {S::kRequested, S::kDestroyed},
      {S::kProvisioning, S::kRunning},   {S::kProvisioning, S::kFailed}, {S::kProvisioning, S::kStopping},
      {S::kRunning, S::kPaused},         {S::kRunning, S::kStopping},    {S::kRunning, S::kFailed},
      {S::kPaused, S::kRunning},         {S::kPaused, S::kStopping},     {S::kPaused, S::kFailed},
      {S::kStopping, S::kStopped},       {S::kStopping, S::kDestroyed},  {S::kStopping, S::kFailed},
      {S::kStopped, S::kProvisioning},   {S::kStopped, S::kStopping},    {S::kStopped, S::kDestroyed},
      {S::kFailed, S::kStopping},        {S::kFailed, S::kDestroyed},
  };
  ManualClock clock;
  for (S from : kAllStates) {
    for (S to : kAllStates) {
      Session s;
      s.id = SessionId("s");
      s.state = from;
      s.state_reason = "before";
      auto r = s.transitionTo(to, "after", clock.now());
      const bool expect_ok = allowed.count({from, to}) > 0;
      EXPECT_EQ(r.ok(), expect_ok) << enumName(from) << " -> " << enumName(to);
      if (expect_ok) {
        EXPECT_EQ(s.state, to);
        EXPECT_EQ(s.state_reason, "after");
      } else {
        EXPECT_EQ(r.error().code(), ErrorCode::kFailedPrecondition);
        EXPECT_EQ(s.state, from);  // Unchanged on refusal.
        EXPECT_EQ(s.state_reason, "before");
      }
    }
  }
}

TEST(SessionStateMachine, StartedAtIsSetOnceAndReservationsFollowState) {
  ManualClock clock;
  Session s;
  s.id = SessionId("s");
  ASSERT_TRUE(s.transitionTo(SessionState::kProvisioning, "", clock.now()).ok());
  clock.advance(Duration(100));
  ASSERT_TRUE(s.transitionTo(SessionState::kRunning, "", clock.now()).ok());
  const auto first = s.started_at;
  ASSERT_TRUE(s.transitionTo(SessionState::kPaused, "", clock.now()).ok());
  clock.advance(Duration(100));
  ASSERT_TRUE(s.transitionTo(SessionState::kRunning, "", clock.now()).ok());
  EXPECT_EQ(s.started_at, first);
  EXPECT_EQ(s.state_changed_at, clock.now());
  EXPECT_TRUE(holdsReservation(SessionState::kRunning));
  EXPECT_FALSE(holdsReservation(SessionState::kStopped));
  EXPECT_FALSE(holdsReservation(SessionState::kFailed));
  EXPECT_TRUE(isTerminal(SessionState::kDestroyed));
}

TEST(Session, ValidationAndStaging) {
  Session s;
  s.id = SessionId("s");
  s.workspace_id = WorkspaceId("w");
  expectInvalid(s.validate(), "session.user_id");
  s.staging_config_id = StagingConfigId("pool");
  EXPECT_TRUE(s.validate().ok());
  EXPECT_TRUE(s.isStaged());
  s.state = SessionState::kRunning;
  expectInvalid(s.validate(), "session.agent_id");
  s.agent_id = AgentId("a");
  EXPECT_TRUE(s.validate().ok());
}

TEST(UserGroupApiKey, Validation) {
  User u;
  u.id = UserId("u1");
  u.username = "alice";
  EXPECT_TRUE(u.validate().ok());
  u.password_hash = "hunter2";
  expectInvalid(u.validate(), "user.password_hash");
  u.password_hash = "";
  u.username = "al ice";
  expectInvalid(u.validate(), "user.username");

  Group g;
  g.id = GroupId("g");
  g.name = "Admins";
  g.permissions = {"admin"};
  EXPECT_TRUE(g.validate().ok());
  g.permissions.insert("root");
  expectInvalid(g.validate(), "group.permissions");
  g.permissions = {};
  g.settings.max_sessions_per_user = -1;
  expectInvalid(g.validate(), "group.settings.max_sessions_per_user");
  g.settings.max_sessions_per_user = 2;
  g.settings.keepalive_expiration = Duration(0);
  expectInvalid(g.validate(), "group.settings.keepalive_expiration");

  ApiKey k;
  k.id = ApiKeyId("k1");
  k.name = "ci";
  k.key = "abc";
  k.secret_hash = "plain-secret";
  expectInvalid(k.validate(), "api_key.secret_hash");
  k.secret_hash = "$sha256$salt$hash";
  EXPECT_TRUE(k.validate().ok());
  ManualClock clock;
  k.expires_at = clock.now();
  EXPECT_TRUE(k.isExpired(clock.now()));
}

TEST(ServersStagingAutoscaleLicense, Validation) {
  Server s;
  s.id = ServerId("s");
  s.friendly_name = "RDP host";
  s.hostname = "rdp.local";
  s.zone_id = ZoneId("z");
  EXPECT_TRUE(s.validate().ok());
  s.hostname = "rdp://host/path";
  expectInvalid(s.validate(), "server.hostname");
  s.hostname = "rdp.local";
  s.connection_type = ServerConnectionType::kSsh;
  s.certificate_policy = CertificatePolicy::kIgnore;
  expectInvalid(s.validate(), "server.certificate_policy");  // SSH host keys are always pinned.
  s.certificate_policy = CertificatePolicy::kPin;
  EXPECT_EQ(s.protocol(), SessionProtocol::kSsh);
  s.connection_type = ServerConnectionType::kKasmVnc;
  EXPECT_EQ(s.protocol(), SessionProtocol::kHttps);
  s.max_simultaneous_sessions = 0;
  expectInvalid(s.validate(), "server.max_simultaneous_sessions");

  StagingConfig c;
  c.id = StagingConfigId("c");
  c.workspace_id = WorkspaceId("w");
  c.zone_id = ZoneId("z");
  EXPECT_TRUE(c.validate().ok());
  c.desired = -1;
  expectInvalid(c.validate(), "staging_config.desired");

  AutoscaleConfig a;
  a.id = AutoscaleConfigId("a");
  a.name = "aws east";
  a.zone_id = ZoneId("z");
  a.provider = "test";
  EXPECT_TRUE(a.validate().ok());
  a.min_instances = 5;
  a.max_instances = 2;
  expectInvalid(a.validate(), "autoscale_config.max_instances");

  LicenseRecord l;
  l.id = LicenseId("l");
  l.armored = "x";
  l.not_before = fromUnixMillis(10);
  l.expires_at = fromUnixMillis(5);
  expectInvalid(l.validate(), "license.expires_at");
}

TEST(Json, EveryModelTypeRoundTrips) {
  Group g;
  g.id = GroupId("g");
  g.name = "All";
  g.permissions = {"sessions:launch"};
  g.settings.session_time_limit = std::chrono::minutes(30);
  g.settings.default_workspace = WorkspaceId("w");
  EXPECT_EQ(*fromJson<Group>(toJson(g)), g);
  Agent a;
  a.id = AgentId("a");
  a.labels = {{"gpu", "a100"}};
  a.overrides.memory_bytes = 5;
  a.last_checkin = fromUnixMillis(99);
  a.cpu_utilization = 0.25;
  EXPECT_EQ(*fromJson<Agent>(toJson(a)), a);
  ApiKey k;
  k.id = ApiKeyId("k");
  k.permissions = {"admin"};
  k.expires_at = fromUnixMillis(1);
  EXPECT_EQ(*fromJson<ApiKey>(toJson(k)), k);
  AutoscaleConfig as;
  as.id = AutoscaleConfigId("as");
  as.standby = Resources::fromCores(4, Resources::kGiB);
  EXPECT_EQ(*fromJson<AutoscaleConfig>(toJson(as)), as);
  LicenseRecord l;
  l.features = {"staging"};
  l.type = LicenseType::kNamedUsers;
  EXPECT_EQ(*fromJson<LicenseRecord>(toJson(l)), l);
  Setting st{"installation_id", "abc", fromUnixMillis(3)};
  EXPECT_EQ(*fromJson<Setting>(toJson(st)), st);
  Server sv;
  sv.pool_id = ServerPoolId("p");
  EXPECT_EQ(*fromJson<Server>(toJson(sv)), sv);
  StagingConfig sc;
  sc.expiration = std::chrono::minutes(5);
  EXPECT_EQ(*fromJson<StagingConfig>(toJson(sc)), sc);
  User u;
  u.group_ids = {GroupId("g1"), GroupId("g2")};
  u.last_login_at = fromUnixMillis(8);
  EXPECT_EQ(*fromJson<User>(toJson(u)), u);
}

}  // namespace
}  // namespace kasm
