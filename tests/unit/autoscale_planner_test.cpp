// The autoscaler's planner (kasm/autoscale/planner.hpp), its schedules and time zones, and the
// startup-script template: pure functions on fixed inputs.

#include <gtest/gtest.h>

#include "kasm/autoscale/planner.hpp"
#include "kasm/autoscale/startup_script.hpp"
#include "kasm/core/time_zone.hpp"

namespace kasm::autoscale {
namespace {

using std::chrono::minutes;
using std::chrono::seconds;

// 2026-12-02 (a Wednesday) 12:00 UTC.
const TimePoint kNoon = fromUnixMillis(1'796'212'800'000);

AutoscaleConfig agentsConfig() {
  AutoscaleConfig c;
  c.id = AutoscaleConfigId("cfg");
  c.name = "east";
  c.zone_id = ZoneId("z-east");
  c.provider = "command";
  c.standby = Resources::fromCores(16, 32 * Resources::kGiB);
  c.max_instances = 10;
  return c;
}

FleetMember ready(const std::string& id, double free_cores, int sessions = 0,
                  std::optional<TimePoint> idle_since = std::nullopt) {
  FleetMember m;
  m.id = AutoscaleVmId(id);
  m.phase = VmPhase::kReady;
  m.created_at = kNoon - std::chrono::hours(2);
  m.checked_in = true;
  m.sessions = sessions;
  m.served = sessions > 0;
  m.capacity = Resources::fromCores(8, 16 * Resources::kGiB);
  m.available = Resources::fromCores(free_cores, static_cast<std::int64_t>(free_cores * 2) * Resources::kGiB);
  m.idle_since = idle_since;
  return m;
}

PlannerInput input(AutoscaleConfig c) {
  PlannerInput in;
  in.config = std::move(c);
  in.now = kNoon;
  in.zone_name = "east";
  in.machine_capacity = Resources::fromCores(8, 16 * Resources::kGiB);
  return in;
}

TEST(AutoscalePlanner, MakesEnoughMachinesForTheStandbyAndSaysWhy) {
  auto in = input(agentsConfig());
  in.other_available = Resources::fromCores(6, 12 * Resources::kGiB);
  const Plan p = plan(in);
  ASSERT_EQ(p.count(ActionKind::kCreate), 2u);  // 6 + 2 x 8 >= 16.
  EXPECT_EQ(p.summary, "zone east: +2 agents, standby cores 6 < 16");
  EXPECT_EQ(p.actions[0].reason, "standby cores 6 < 16");
}

TEST(AutoscalePlanner, BootingMachinesCountSoATickDoesNotMakeThemTwice) {
  auto in = input(agentsConfig());
  in.other_available = Resources::fromCores(6, 12 * Resources::kGiB);
  for (const char* id : {"a", "b"}) {
    FleetMember m;
    m.id = AutoscaleVmId(id);
    m.phase = VmPhase::kBooting;
    m.created_at = kNoon - minutes(2);
    in.fleet.push_back(m);
  }
  const Plan p = plan(in);
  EXPECT_TRUE(p.actions.empty()) << p.summary;
  EXPECT_EQ(p.instances, 2);
  EXPECT_NE(p.summary.find("steady, 2 agents, standby cores 22 / 16"), std::string::npos) << p.summary;
}

TEST(AutoscalePlanner, NeverMoreThanMaxInstancesAndSaysSo) {
  auto c = agentsConfig();
  c.max_instances = 3;
  c.standby = Resources::fromCores(64, 0);
  auto in = input(c);
  in.fleet.push_back(ready("a", 0, 2));
  const Plan p = plan(in);
  EXPECT_EQ(p.count(ActionKind::kCreate), 2u);
  EXPECT_NE(p.summary.find("max_instances 3 reached"), std::string::npos) << p.summary;
  in.fleet.push_back(ready("b", 0, 2));
  in.fleet.push_back(ready("c", 0, 2));
  const Plan full = plan(in);
  EXPECT_EQ(full.count(ActionKind::kCreate), 0u);
  EXPECT_EQ(full.summary, "zone east: no machine made: standby cores 0 < 64, but max_instances 3 is reached");
}

TEST(AutoscalePlanner, GrowingDemandIsMetAheadOfTheBootTime) {
  auto in = input(agentsConfig());
  in.other_available = Resources::fromCores(16, 32 * Resources::kGiB);
  EXPECT_TRUE(plan(in).actions.empty());
  // 20 cores more reserved in 5 minutes, machines take 90 s: 6 cores ahead of it.
  in.growth = Resources::fromCores(20, 0);
  in.boot_time = seconds(90);
  const Plan p = plan(in);
  EXPECT_EQ(p.ahead.millicores, 6000);
  ASSERT_EQ(p.count(ActionKind::kCreate), 1u);
  EXPECT_EQ(p.actions[0].reason, "standby cores 16 < 22 (6 of them ahead of demand growing 4 cores/min, boot 90 s)");
  // Shrinking demand adds nothing; nor does growth while the boot time is not known.
  in.growth = Resources::fromCores(-20, 0);
  EXPECT_TRUE(plan(in).actions.empty());
  in.growth = Resources::fromCores(20, 0);
  in.boot_time = {};
  EXPECT_TRUE(plan(in).actions.empty());
}

TEST(AutoscalePlanner, UnmetDemandIsServedOnTopOfTheStandby) {
  auto c = agentsConfig();
  c.standby = {};
  auto in = input(c);
  in.unplaced = Resources::fromCores(20, 0);
  EXPECT_EQ(plan(in).count(ActionKind::kCreate), 3u);
}

TEST(AutoscalePlanner, DrainsTheLongestIdleMachineOnlyAfterTheBackoff) {
  auto c = agentsConfig();
  c.standby = Resources::fromCores(8, 0);
  auto in = input(c);
  in.fleet.push_back(ready("a", 8, 0, kNoon - minutes(5)));
  in.fleet.push_back(ready("b", 8, 0, kNoon - minutes(30)));
  in.fleet.push_back(ready("c", 8, 0, kNoon - minutes(12)));
  Plan p = plan(in);
  // 24 free, 8 wanted: b (30 min) and c (12 min) may go; a is idle for less than the backoff.
  ASSERT_EQ(p.count(ActionKind::kDrain), 2u) << p.summary;
  EXPECT_EQ(p.actions[0].vm->str(), "b");
  EXPECT_EQ(p.actions[1].vm->str(), "c");
  EXPECT_EQ(p.actions[0].reason, "idle 30 min >= backoff 10 min; standby cores stay 16 >= 8");
  EXPECT_EQ(p.summary, "zone east: -2 agents, idle 30 min >= backoff 10 min; standby cores stay 16 >= 8");

  in.last_scale_up = kNoon - minutes(3);
  p = plan(in);
  EXPECT_TRUE(p.actions.empty());
  EXPECT_NE(p.summary.find("no scale-down within 10 min of the last scale-up"), std::string::npos) << p.summary;
}

TEST(AutoscalePlanner, KeepsTheStandbyAndMinInstancesWhenDraining) {
  auto c = agentsConfig();
  c.standby = Resources::fromCores(12, 0);
  c.min_instances = 1;
  auto in = input(c);
  in.fleet.push_back(ready("a", 8, 0, kNoon - minutes(60)));
  in.fleet.push_back(ready("b", 8, 0, kNoon - minutes(60)));
  EXPECT_TRUE(plan(in).actions.empty());  // 16 - 8 < 12.
  c.standby = {};
  in.config = c;
  const Plan p = plan(in);
  EXPECT_EQ(p.count(ActionKind::kDrain), 1u);  // min_instances keeps one.
}

TEST(AutoscalePlanner, MachinesWithSessionsAreNeverDrainedOrDestroyed) {
  auto c = agentsConfig();
  c.standby = {};
  auto in = input(c);
  in.fleet.push_back(ready("busy", 4, 1, std::nullopt));
  auto draining = ready("draining", 4, 1);
  draining.phase = VmPhase::kDraining;
  in.fleet.push_back(draining);
  const Plan p = plan(in);
  EXPECT_TRUE(p.actions.empty()) << p.summary;
  in.fleet[1].sessions = 0;
  const Plan q = plan(in);
  ASSERT_EQ(q.count(ActionKind::kDestroy), 1u);
  EXPECT_EQ(q.actions[0].vm->str(), "draining");
}

TEST(AutoscalePlanner, AMachineThatDoesNotCheckInInTimeIsDestroyed) {
  auto c = agentsConfig();
  c.standby = {};
  auto in = input(c);
  FleetMember late;
  late.id = AutoscaleVmId("late");
  late.phase = VmPhase::kBooting;
  late.created_at = kNoon - minutes(16);
  in.fleet.push_back(late);
  const Plan p = plan(in);
  ASSERT_EQ(p.count(ActionKind::kDestroy), 1u);
  EXPECT_EQ(p.actions[0].reason, "did not check in within 15 min (provision timeout)");
  in.fleet[0].created_at = kNoon - minutes(14);
  EXPECT_TRUE(plan(in).actions.empty());
}

TEST(AutoscalePlanner, ANonReusableMachineGoesWhenItsSessionEnds) {
  auto c = agentsConfig();
  c.reusable = false;
  c.standby = {};
  auto in = input(c);
  auto used = ready("used", 8, 0, kNoon - minutes(1));
  used.served = true;
  in.fleet.push_back(used);
  const Plan p = plan(in);
  ASSERT_EQ(p.count(ActionKind::kDestroy), 1u);
  EXPECT_EQ(p.actions[0].reason, "not reusable: its session ended");
}

TEST(AutoscalePlanner, UnknownMachineCapacityMakesOneAtATime) {
  auto in = input(agentsConfig());
  in.machine_capacity = {};
  Plan p = plan(in);
  EXPECT_EQ(p.count(ActionKind::kCreate), 1u);
  EXPECT_NE(p.summary.find("not known yet"), std::string::npos) << p.summary;
  FleetMember booting;
  booting.id = AutoscaleVmId("b");
  booting.phase = VmPhase::kBooting;
  booting.created_at = kNoon;
  in.fleet.push_back(booting);
  EXPECT_EQ(plan(in).count(ActionKind::kCreate), 0u);
}

TEST(AutoscalePlanner, AStandbyOfGpusFromMachinesWithoutAnyIsExplainedNotChased) {
  auto c = agentsConfig();
  c.standby = Resources::fromCores(0, 0, 2);
  const Plan p = plan(input(c));
  EXPECT_TRUE(p.actions.empty());
  EXPECT_NE(p.summary.find("brings none"), std::string::npos) << p.summary;
}

TEST(AutoscalePlanner, ServerPoolsKeepFreeSessionSlots) {
  auto c = agentsConfig();
  c.pool_id = ServerPoolId("pool");
  c.standby = {};
  c.min_standby_sessions = 5;
  c.server_max_sessions = 2;
  auto in = input(c);
  in.other_free_sessions = 1;
  const Plan p = plan(in);
  EXPECT_EQ(p.count(ActionKind::kCreate), 2u);  // 1 + 2 x 2 >= 5.
  EXPECT_EQ(p.summary, "zone east: +2 servers, free sessions 1 < 5");
}

TEST(AutoscalePlanner, OutsideItsScheduleNoStandbyIsKeptButDemandIsServed) {
  auto c = agentsConfig();
  c.schedules = {AutoscaleSchedule{{1, 2, 3, 4, 5}, "08:00", "18:00"}};
  auto in = input(c);
  EXPECT_TRUE(plan(in).in_schedule);       // Wednesday noon UTC.
  in.now = kNoon + std::chrono::hours(8);  // 20:00.
  Plan p = plan(in);
  EXPECT_FALSE(p.in_schedule);
  EXPECT_TRUE(p.actions.empty());
  EXPECT_NE(p.summary.find("outside its schedule"), std::string::npos);
  in.unplaced = Resources::fromCores(2, 0);
  EXPECT_EQ(plan(in).count(ActionKind::kCreate), 1u);
}

TEST(AutoscaleSchedules, WindowsCrossMidnightAndFollowTheTimeZone) {
  AutoscaleConfig c = agentsConfig();
  c.schedules = {AutoscaleSchedule{{5}, "22:00", "06:00"}};  // Friday night into Saturday.
  const TimeZone utc = TimeZone::utc();
  const TimePoint friday_23 = kNoon + std::chrono::hours(24 * 2 + 11);
  EXPECT_TRUE(inSchedule(c, utc, friday_23));
  EXPECT_TRUE(inSchedule(c, utc, friday_23 + std::chrono::hours(6)));    // Saturday 05:00.
  EXPECT_FALSE(inSchedule(c, utc, friday_23 + std::chrono::hours(8)));   // Saturday 07:00.
  EXPECT_FALSE(inSchedule(c, utc, friday_23 - std::chrono::hours(24)));  // Thursday 23:00.

  auto paris = TimeZone::load("Europe/Paris");
  ASSERT_TRUE(paris.ok()) << paris.error().toString();
  c.schedules = {AutoscaleSchedule{{}, "12:30", "13:30"}};
  EXPECT_FALSE(inSchedule(c, utc, kNoon + minutes(15)));    // 12:15 UTC.
  EXPECT_TRUE(inSchedule(c, *paris, kNoon + minutes(15)));  // 13:15 in Paris (UTC+1 in December).
}

TEST(AutoscaleTimeZones, ReadTheSystemDatabaseAndRefuseEscapes) {
  auto ny = TimeZone::load("America/New_York");
  ASSERT_TRUE(ny.ok()) << ny.error().toString();
  EXPECT_EQ(ny->offsetAt(kNoon), -5 * 3600);                                 // December: EST.
  EXPECT_EQ(ny->offsetAt(kNoon - std::chrono::hours(24 * 150)), -4 * 3600);  // July: EDT.
  const LocalTime t = ny->local(kNoon);
  EXPECT_EQ(t.weekday, 3);
  EXPECT_EQ(t.minute_of_day, 7 * 60);
  EXPECT_EQ(TimeZone::load("Nowhere/Atlantis").error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(TimeZone::load("../../etc/passwd").error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(TimeZone::load("/etc/passwd").error().code(), ErrorCode::kInvalidArgument);
  EXPECT_FALSE(TimeZone::fromTzif("bad", "TZif2 not really").ok());
  EXPECT_FALSE(TimeZone::fromTzif("bad", "").ok());
}

TEST(AutoscaleStartupScript, FillsKasmsVariablesAndKeepsLiteralBraces) {
  auto out = renderStartupScript(
      "kasm-agent --agent-id {server_id} --token {registration_token} "
      "--server {upstream_address} # {{literal}} on {provider_name}",
      {{"server_id", "a1"},
       {"registration_token", "t0k"},
       {"upstream_address", "https://m:8443"},
       {"provider_name", "aws-ec2"}});
  ASSERT_TRUE(out.ok()) << out.error().toString();
  EXPECT_EQ(*out, "kasm-agent --agent-id a1 --token t0k --server https://m:8443 # {literal} on aws-ec2");
  EXPECT_NE(checkStartupScript("echo {nope}").error().message().find("unknown variable {nope}"), std::string::npos);
  EXPECT_FALSE(checkStartupScript("echo {server_id").ok());
  EXPECT_FALSE(checkStartupScript("echo }").ok());
  EXPECT_TRUE(checkStartupScript("f() {{ echo; }}").ok());
}

TEST(AutoscaleConfigModel, ValidatesWhatAnAdministratorTypes) {
  auto c = agentsConfig();
  EXPECT_TRUE(c.validate().ok());
  c.time_zone = "Mars/Olympus";
  EXPECT_FALSE(c.validate().ok());
  c.time_zone = "Europe/Paris";
  c.schedules = {AutoscaleSchedule{{7}, "08:00", "18:00"}};
  EXPECT_FALSE(c.validate().ok());
  c.schedules = {AutoscaleSchedule{{1}, "8:00", "18:00"}};
  EXPECT_FALSE(c.validate().ok());
  c.schedules = {AutoscaleSchedule{{1}, "08:00", "24:00"}};
  EXPECT_TRUE(c.validate().ok());
  c.startup_script = "run {secret}";
  EXPECT_NE(c.validate().error().message().find("autoscale_config.startup_script"), std::string::npos);
  EXPECT_TRUE(isSecretProviderField("secret_access_key"));
  EXPECT_TRUE(isSecretProviderField("session_token"));
  EXPECT_FALSE(isSecretProviderField("access_key_id"));
}

}  // namespace
}  // namespace kasm::autoscale
