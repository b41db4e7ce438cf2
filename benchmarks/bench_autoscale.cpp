// Autoscaler benchmark (issue 17): one simulated day of an autoscaled zone, driven by the real
// planner (kasm/autoscale/planner.hpp) against a simulated provider, and the planner's CPU per tick
// at 10,000 agents.
//
// The day: 2,000 users, a diurnal curve of concurrent sessions (3% at night, a morning ramp from
// 07:00 to 09:30, peaks near 60% around 10:00 and 14:00, a lunch dip, an evening decline), sessions
// of 30-240 min, launches arriving as a Poisson process whose rate follows the curve, and two launch
// peaks of 200 users within 5 minutes at 09:00 and 13:30. A session holds 2 cores / 4 GiB; a machine
// brings 16 cores / 32 GiB (8 sessions) and checks in 60-120 s after it is made. The planner runs
// every 10 s of simulated time and its actions are applied as the loop applies them. Everything is
// seeded and the clock is a variable, so every run prints the same figures, the CPU timings aside.
//
//   bench_autoscale [standby_cores [HH:MM HH:MM]]
//
// The arguments tune the detailed run: its standby (16 cores when not given) and a daily window
// outside which it keeps none. A sweep of standbys on the same demand follows it.

#include <time.h>

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <iterator>
#include <optional>
#include <queue>
#include <string>
#include <vector>

#include "kasm/autoscale/planner.hpp"
#include "kasm/core/random.hpp"

namespace {

using namespace kasm;
using namespace kasm::autoscale;

// Simulated time is milliseconds since the measured day's midnight; the warm-up is negative.
constexpr std::int64_t kSecond = 1000;
constexpr std::int64_t kMinute = 60 * kSecond;
constexpr std::int64_t kHour = 60 * kMinute;
constexpr std::int64_t kDay = 24 * kHour;
constexpr std::int64_t kNever = INT64_MAX;
// The day starts after six simulated hours, so it opens on a night fleet, not an empty zone.
constexpr std::int64_t kWarmUp = 6 * kHour;
constexpr std::int64_t kTick = 10 * kSecond;
const TimePoint kMidnight = fromUnixMillis(1'796'169'600'000);  // 2026-12-02 00:00 UTC.

constexpr int kUsers = 2000;
constexpr std::int64_t kMinSession = 30 * kMinute;
constexpr std::int64_t kMaxSession = 240 * kMinute;
constexpr int kPeakLaunches = 200;
constexpr std::int64_t kPeakSpread = 5 * kMinute;
constexpr std::int64_t kPeakStarts[] = {9 * kHour, 13 * kHour + 30 * kMinute};
constexpr int kSessionsPerMachine = 8;
constexpr Resources kSession{2000, 4 * Resources::kGiB, 0};
constexpr Resources kMachine{16000, 32 * Resources::kGiB, 0};
constexpr std::uint64_t kDemandSeed = 17;
constexpr std::uint64_t kProviderSeed = 1717;

// A value in [0, 1) from 53 random bits.
double unitInterval(Random& r) {
  return static_cast<double>(r.next() >> 11) * 0x1.0p-53;
}

// ---- demand ----------------------------------------------------------------------------------

// Share of the users in a session by time of day, linear between the points.
struct CurvePoint {
  double hour;
  double share;
};
constexpr CurvePoint kCurve[] = {{0, 0.03},    {6, 0.03},     {7, 0.06},  {8, 0.25},     {9.5, 0.55}, {10, 0.60},
                                 {11.5, 0.56}, {12.25, 0.40}, {13, 0.40}, {13.75, 0.55}, {14, 0.60},  {15.5, 0.55},
                                 {17, 0.35},   {18.5, 0.15},  {20, 0.08}, {22, 0.04},    {24, 0.03}};
constexpr double kCurvePeak = 0.60;

double concurrentShare(std::int64_t t) {
  const double h = static_cast<double>(((t % kDay) + kDay) % kDay) / static_cast<double>(kHour);
  for (std::size_t i = 1; i < std::size(kCurve); ++i) {
    if (h <= kCurve[i].hour) {
      const CurvePoint a = kCurve[i - 1], b = kCurve[i];
      return a.share + (b.share - a.share) * (h - a.hour) / (b.hour - a.hour);
    }
  }
  return kCurve[std::size(kCurve) - 1].share;
}

struct Launch {
  std::int64_t at;
  std::int64_t duration;
};

struct Demand {
  std::vector<Launch> launches;  // Sorted by time, the warm-up's included.
  std::int64_t peak_launches = 0;
};

// Sessions live 30-240 min (mean 135 min). By Little's law a launch rate of users x share / mean
// keeps `share` of the users in a session; a session started at t is counted until it ends, so the
// rate leads the curve by E[D^2] / 2E[D] (81 min for this duration) for the sessions to follow it.
Demand makeDemand() {
  SeededRandom random(kDemandSeed);
  const double mean = static_cast<double>(kMinSession + kMaxSession) / 2.0;
  const double lo = static_cast<double>(kMinSession), hi = static_cast<double>(kMaxSession);
  const auto lead = static_cast<std::int64_t>((hi * hi * hi - lo * lo * lo) / (3.0 * (hi - lo)) / (2.0 * mean));
  const double max_rate = kUsers * kCurvePeak / mean;  // Launches per millisecond.
  auto duration = [&] {
    return kMinSession + static_cast<std::int64_t>(random.uniform((kMaxSession - kMinSession) / kSecond + 1)) * kSecond;
  };
  Demand d;
  // A Poisson process of varying rate by thinning one of the maximal rate.
  double t = static_cast<double>(-kWarmUp);
  for (;;) {
    t += -std::log(1.0 - unitInterval(random)) / max_rate;
    if (t >= static_cast<double>(kDay)) break;
    const auto at = static_cast<std::int64_t>(t);
    const double rate = kUsers * concurrentShare(at + lead) / mean;
    if (unitInterval(random) * max_rate < rate) d.launches.push_back({at, duration()});
  }
  for (std::int64_t start : kPeakStarts) {
    for (int i = 0; i < kPeakLaunches; ++i) {
      d.launches.push_back({start + static_cast<std::int64_t>(random.uniform(kPeakSpread)), duration()});
    }
    d.peak_launches += kPeakLaunches;
  }
  std::sort(d.launches.begin(), d.launches.end(),
            [](const Launch& a, const Launch& b) { return a.at < b.at || (a.at == b.at && a.duration < b.duration); });
  return d;
}

// ---- the simulated zone ----------------------------------------------------------------------

struct Machine {
  std::int64_t created = 0;
  std::int64_t destroyed = kNever;
  bool checked_in = false, draining = false, gone = false, served = false;
  int sessions = 0;
  std::optional<std::int64_t> idle_since;
};

// Something that happens at a set time: a session ends or a machine checks in.
struct Event {
  std::int64_t at;
  std::uint64_t seq;  // Order of scheduling, so equal times resolve the same way every run.
  bool check_in;
  int machine;
  friend bool operator>(const Event& a, const Event& b) { return a.at > b.at || (a.at == b.at && a.seq > b.seq); }
};

struct Waiter {
  std::int64_t arrived;
  std::int64_t duration;
};

// The zone at the top of an hour, and the launches of the hour that follows.
struct HourSample {
  int sessions = 0, machines = 0, booting = 0;
  int launches = 0, waited = 0;  // Launches arriving in the hour; those of them that waited.
};

struct DayFigures {
  std::int64_t launches = 0, instant = 0, waited = 0;
  std::int64_t waited_in_peaks = 0;  // Of `waited`: arrived in a launch peak's 5 minutes.
  std::int64_t worst_wait = 0, total_wait = 0;
  std::int64_t vm_ms = 0;
  int peak_sessions = 0;
  std::int64_t peak_sessions_at = 0;
  int created = 0, destroyed = 0, peak_machines = 0;
  std::int64_t ticks = 0, plan_cpu_ns = 0;
  HourSample hours[24];
  std::vector<std::string> early_scale_ups, peak_scale_ups, scale_downs;
};

bool inLaunchPeak(std::int64_t t) {
  return std::any_of(std::begin(kPeakStarts), std::end(kPeakStarts),
                     [t](std::int64_t start) { return t >= start && t < start + kPeakSpread; });
}

std::string clockText(std::int64_t t) {
  const std::int64_t in_day = ((t % kDay) + kDay) % kDay;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%s%02d:%02d:%02d", t < 0 ? "D-1 " : "", static_cast<int>(in_day / kHour),
                static_cast<int>(in_day / kMinute % 60), static_cast<int>(in_day / kSecond % 60));
  return buf;
}

std::string durationText(std::int64_t ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%d:%02d", static_cast<int>(ms / kMinute), static_cast<int>(ms / kSecond % 60));
  return buf;
}

std::int64_t threadCpuNanos() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// The configuration's tunables here: its standby, and optionally one daily window outside which no
// standby is kept (the only way a configuration varies its standby over the day).
struct Tuning {
  double standby_cores = 16;
  const char* window_start = nullptr;  // "HH:MM"; null: the standby is kept at all times.
  const char* window_end = nullptr;
  bool lookahead = true;  // The planner sees the demand's growth and the boot time (as the loop does).

  std::string text() const {
    char buf[48];
    std::snprintf(buf, sizeof buf, "%g", standby_cores);
    std::string out = window_start ? std::string(buf) + " " + window_start + "-" + window_end : std::string(buf);
    return lookahead ? out : out + " no ramp";
  }
};

AutoscaleConfig simConfig(const Tuning& tuning) {
  const double standby_cores = tuning.standby_cores;
  AutoscaleConfig c;
  c.id = AutoscaleConfigId("bench");
  c.name = "bench";
  c.zone_id = ZoneId("sim");
  c.provider = "simulated";
  c.standby = Resources::fromCores(standby_cores, static_cast<std::int64_t>(standby_cores * 2) * Resources::kGiB);
  c.max_instances = 400;
  c.downscale_backoff = std::chrono::minutes(10);
  c.reusable = true;
  if (tuning.window_start) {
    AutoscaleSchedule s;
    s.start = tuning.window_start;
    s.end = tuning.window_end;
    c.schedules.push_back(s);
  }
  return c;
}

// One day of one configuration. The zone has no other capacity: every session runs on a machine the
// planner asked for. Launches never queue behind one another when there is room (waiters are
// served as soon as a slot appears), and a waiting launch counts in `unplaced` until it is placed,
// like the loop's window of refused launches but without its memory.
class ZoneSimulation {
 public:
  ZoneSimulation(const Demand& demand, const Tuning& tuning, bool keep_decisions)
      : demand_(demand), config_(simConfig(tuning)), keep_decisions_(keep_decisions), lookahead_(tuning.lookahead) {}

  DayFigures run() {
    std::size_t next_launch = 0;
    std::int64_t next_tick = -kWarmUp;
    for (;;) {
      const std::int64_t launch_at = next_launch < demand_.launches.size() ? demand_.launches[next_launch].at : kNever;
      const std::int64_t event_at = events_.empty() ? kNever : events_.top().at;
      // At one instant: capacity appears first, then launches, then the planner looks.
      const std::int64_t now = std::min({launch_at, event_at, next_tick});
      if (now >= kDay) break;
      if (event_at == now) {
        const Event e = events_.top();
        events_.pop();
        e.check_in ? checkIn(e.machine, now) : endSession(e.machine, now);
      } else if (launch_at == now) {
        launch(demand_.launches[next_launch++], now);
      } else {
        tick(now);
        next_tick += kTick;
      }
    }
    for (const Machine& m : machines_) {
      const std::int64_t from = std::max<std::int64_t>(m.created, 0), to = std::min(m.destroyed, kDay);
      if (to > from) f_.vm_ms += to - from;
    }
    return f_;
  }

 private:
  void schedule(std::int64_t at, bool check_in, int machine) { events_.push({at, seq_++, check_in, machine}); }

  // The most loaded checked-in machine with room, so the emptier ones drain; -1 when none has room.
  int roomFor() const {
    int best = -1;
    for (int i : live_) {
      const Machine& m = machines_[static_cast<std::size_t>(i)];
      if (!m.checked_in || m.draining || m.sessions >= kSessionsPerMachine) continue;
      if (best < 0 || m.sessions > machines_[static_cast<std::size_t>(best)].sessions) best = i;
    }
    return best;
  }

  void place(int i, std::int64_t duration, std::int64_t now) {
    Machine& m = machines_[static_cast<std::size_t>(i)];
    ++m.sessions;
    m.served = true;
    m.idle_since.reset();
    schedule(now + duration, false, i);
    ++sessions_;
    if (now >= 0 && sessions_ > f_.peak_sessions) {
      f_.peak_sessions = sessions_;
      f_.peak_sessions_at = now;
    }
  }

  void serveWaiting(std::int64_t now) {
    while (!waiting_.empty()) {
      const int i = roomFor();
      if (i < 0) return;
      const Waiter w = waiting_.front();
      waiting_.pop_front();
      place(i, w.duration, now);
      if (w.arrived >= 0) {
        ++f_.waited;
        if (inLaunchPeak(w.arrived)) ++f_.waited_in_peaks;
        ++f_.hours[w.arrived / kHour].waited;
        f_.total_wait += now - w.arrived;
        f_.worst_wait = std::max(f_.worst_wait, now - w.arrived);
      }
    }
  }

  void launch(const Launch& l, std::int64_t now) {
    if (now >= 0) {
      ++f_.launches;
      ++f_.hours[now / kHour].launches;
    }
    const int i = waiting_.empty() ? roomFor() : -1;
    if (i >= 0) {
      place(i, l.duration, now);
      if (now >= 0) ++f_.instant;
    } else {
      waiting_.push_back({now, l.duration});
    }
  }

  void checkIn(int i, std::int64_t now) {
    Machine& m = machines_[static_cast<std::size_t>(i)];
    if (m.gone) return;
    m.checked_in = true;
    m.idle_since = now;
    boot_total_ += now - m.created;
    ++boots_;
    serveWaiting(now);
  }

  void endSession(int i, std::int64_t now) {
    Machine& m = machines_[static_cast<std::size_t>(i)];
    --sessions_;
    if (--m.sessions == 0) m.idle_since = now;
    serveWaiting(now);
  }

  PlannerInput plannerInput(std::int64_t now) const {
    PlannerInput in;
    in.config = config_;
    in.now = kMidnight + Duration(now);
    in.zone_name = "sim";
    in.unplaced = kSession * static_cast<std::int64_t>(waiting_.size());
    // As the loop measures them: the growth of reserved capacity over the last five minutes of
    // ticks, and the mean time the machines took to check in.
    if (lookahead_ && !reserved_history_.empty()) {
      in.growth = kSession * (sessions_ - reserved_history_.front().second);
      in.growth_window = Duration(now - reserved_history_.front().first);
      if (boots_ > 0) in.boot_time = Duration(boot_total_ / boots_);
    }
    for (int i : live_) {
      const Machine& m = machines_[static_cast<std::size_t>(i)];
      FleetMember f;
      f.id = AutoscaleVmId("vm-" + std::to_string(i));
      f.phase = m.draining ? VmPhase::kDraining : m.checked_in ? VmPhase::kReady : VmPhase::kBooting;
      f.created_at = kMidnight + Duration(m.created);
      if (m.idle_since) f.idle_since = kMidnight + Duration(*m.idle_since);
      f.checked_in = m.checked_in;
      f.sessions = m.sessions;
      f.served = m.served;
      if (m.checked_in) {
        f.capacity = kMachine;
        // What the loop reports for an agent: nothing offered once it drains.
        if (!m.draining) f.available = kMachine - kSession * m.sessions;
        in.machine_capacity = kMachine;  // As the loop learns it: from the machines that checked in.
      }
      if (!in.last_scale_up || f.created_at > *in.last_scale_up) in.last_scale_up = f.created_at;
      in.fleet.push_back(std::move(f));
    }
    return in;
  }

  void tick(std::int64_t now) {
    reserved_history_.emplace_back(now, sessions_);
    while (reserved_history_.size() > 1 && now - reserved_history_.front().first > 5 * kMinute) {
      reserved_history_.pop_front();
    }
    const PlannerInput in = plannerInput(now);
    const std::int64_t cpu0 = threadCpuNanos();
    const Plan p = plan(in);
    f_.plan_cpu_ns += threadCpuNanos() - cpu0;
    ++f_.ticks;
    const bool in_day = now >= 0;
    const std::size_t creates = p.count(ActionKind::kCreate), drains = p.count(ActionKind::kDrain);
    if (keep_decisions_ && creates > 0) {
      auto& log = now >= kPeakStarts[0] ? f_.peak_scale_ups : f_.early_scale_ups;
      if (log.size() < 4) log.push_back(clockText(now) + "  " + p.summary);
    }
    if (keep_decisions_ && in_day && drains > 0 && f_.scale_downs.size() < 3) {
      f_.scale_downs.push_back(clockText(now) + "  " + p.summary);
    }
    for (const Action& a : p.actions) {
      if (a.kind == ActionKind::kCreate) {
        Machine m;
        m.created = now;
        machines_.push_back(m);
        const int i = static_cast<int>(machines_.size()) - 1;
        live_.push_back(i);
        schedule(now + (60 + static_cast<std::int64_t>(provider_random_.uniform(61))) * kSecond, true, i);
        if (in_day) ++f_.created;
        continue;
      }
      const int i = std::atoi(a.vm->str().c_str() + 3);
      Machine& m = machines_[static_cast<std::size_t>(i)];
      if (a.kind == ActionKind::kDrain) {
        m.draining = true;
      } else {
        m.gone = true;
        m.destroyed = now;
        live_.erase(std::find(live_.begin(), live_.end(), i));
        if (in_day) ++f_.destroyed;
      }
    }
    if (!in_day) return;
    f_.peak_machines = std::max(f_.peak_machines, static_cast<int>(live_.size()));
    if (now % kHour == 0) {
      HourSample& h = f_.hours[now / kHour];
      h.sessions = sessions_;
      h.machines = static_cast<int>(live_.size());
      h.booting = static_cast<int>(std::count_if(
          live_.begin(), live_.end(), [&](int i) { return !machines_[static_cast<std::size_t>(i)].checked_in; }));
    }
  }

  const Demand& demand_;
  AutoscaleConfig config_;
  bool keep_decisions_;
  bool lookahead_;
  std::deque<std::pair<std::int64_t, int>> reserved_history_;  // (tick, sessions), the last 5 minutes.
  std::int64_t boot_total_ = 0;
  std::int64_t boots_ = 0;
  SeededRandom provider_random_{kProviderSeed};
  std::vector<Machine> machines_;  // Index = the id's number; never shrinks.
  std::vector<int> live_;          // Not yet destroyed, oldest first.
  std::deque<Waiter> waiting_;
  std::priority_queue<Event, std::vector<Event>, std::greater<>> events_;
  std::uint64_t seq_ = 0;
  int sessions_ = 0;
  DayFigures f_;
};

// VM-hours of a static fleet sized for the day's peak of concurrent sessions.
double staticVmHours(const DayFigures& f) {
  return static_cast<double>((f.peak_sessions + kSessionsPerMachine - 1) / kSessionsPerMachine) * 24.0;
}

double vmHours(const DayFigures& f) {
  return static_cast<double>(f.vm_ms) / static_cast<double>(kHour);
}

double instantShare(const DayFigures& f) {
  return f.launches == 0 ? 0 : 100.0 * static_cast<double>(f.instant) / static_cast<double>(f.launches);
}

// ---- planner CPU at 10,000 agents --------------------------------------------------------------

// A fleet of 10,000 machines in every phase: 60% ready and busy, 15% ready and idle for 0-60 min,
// 10% booting, 5% creating, 5% draining (half of them empty), 3% past the provision timeout, 2%
// being destroyed or missing. `recent_scale_up`: a machine was made 2 minutes ago, so nothing may
// be drained (the common tick while demand grows); otherwise the idle ones past the backoff are
// drained as far as the standby allows (the most work a tick does). `last_scale_up` is set apart
// from the booting machines' ages, which the loop would not do, to reach both paths.
PlannerInput largeFleet(bool recent_scale_up) {
  SeededRandom random(99);
  PlannerInput in;
  in.config = simConfig(Tuning{});
  in.config.max_instances = 20'000;
  in.now = kMidnight + Duration(12 * kHour);
  in.zone_name = "large";
  in.machine_capacity = kMachine;
  for (int i = 0; i < 10'000; ++i) {
    FleetMember f;
    f.id = AutoscaleVmId("vm-" + std::to_string(i));
    f.created_at = in.now - Duration(kHour + static_cast<std::int64_t>(random.uniform(8 * kHour)));
    const std::uint64_t kind = random.uniform(100);
    if (kind < 75) {
      f.phase = VmPhase::kReady;
      f.checked_in = true;
      f.capacity = kMachine;
      f.sessions = kind < 60 ? 1 + static_cast<int>(random.uniform(kSessionsPerMachine)) : 0;
      f.served = f.sessions > 0 || random.uniform(2) == 0;
      f.available = kMachine - kSession * f.sessions;
      if (f.sessions == 0) f.idle_since = in.now - Duration(static_cast<std::int64_t>(random.uniform(kHour)));
    } else if (kind < 90) {
      f.phase = kind < 85 ? VmPhase::kBooting : VmPhase::kCreating;
      f.created_at = in.now - Duration(static_cast<std::int64_t>(random.uniform(2 * kMinute)));
    } else if (kind < 95) {
      f.phase = VmPhase::kDraining;
      f.checked_in = true;
      f.capacity = kMachine;
      f.served = true;
      f.sessions = random.uniform(2) == 0 ? 0 : 1 + static_cast<int>(random.uniform(4));
    } else if (kind < 98) {
      f.phase = VmPhase::kBooting;
      f.created_at = in.now - Duration(20 * kMinute);
    } else {
      f.phase = kind < 99 ? VmPhase::kDestroying : VmPhase::kMissing;
    }
    in.fleet.push_back(std::move(f));
  }
  in.last_scale_up = in.now - Duration(recent_scale_up ? 2 * kMinute : 30 * kMinute);
  return in;
}

struct PlanTiming {
  double us_per_call;
  std::int64_t calls;
  std::size_t actions;
};

// Thread CPU time per plan() call, over at least 200 calls and half a second.
PlanTiming timePlan(const PlannerInput& in) {
  std::size_t actions = plan(in).actions.size();  // Warms the caches and the allocator.
  std::int64_t calls = 0;
  const std::int64_t start = threadCpuNanos();
  std::int64_t spent = 0;
  while (calls < 200 || spent < 500'000'000) {
    actions = plan(in).actions.size();
    ++calls;
    spent = threadCpuNanos() - start;
  }
  return {static_cast<double>(spent) / 1000.0 / static_cast<double>(calls), calls, actions};
}

void printDetail(const Demand& demand, const Tuning& tuning, const DayFigures& f) {
  const double stat = staticVmHours(f);
  std::printf("Standby %s cores (downscale_backoff 10 min, max_instances 400, reusable), seeds %" PRIu64 "/%" PRIu64
              ":\n",
              tuning.text().c_str(), kDemandSeed, kProviderSeed);
  std::printf("  launches in the day          %" PRId64 " (%" PRId64 " of them in the two peaks)\n", f.launches,
              demand.peak_launches);
  std::printf("  served instantly             %.2f %%   goal >= 95 %%: %s\n", instantShare(f),
              instantShare(f) >= 95.0 ? "met" : "NOT met");
  std::printf("  waited                       %" PRId64 " (%" PRId64
              " arrived in the peak windows), mean wait %s, worst wait %s (m:ss)\n",
              f.waited, f.waited_in_peaks, durationText(f.waited ? f.total_wait / f.waited : 0).c_str(),
              durationText(f.worst_wait).c_str());
  std::printf("  peak concurrent sessions     %d at %s -> static fleet %d machines x 24 h = %.0f VM-h\n",
              f.peak_sessions, clockText(f.peak_sessions_at).c_str(),
              (f.peak_sessions + kSessionsPerMachine - 1) / kSessionsPerMachine, stat);
  std::printf("  VM-hours used                %.1f = %.1f %% of static   goal <= 60 %%: %s\n", vmHours(f),
              100.0 * vmHours(f) / stat, vmHours(f) <= 0.6 * stat ? "met" : "NOT met");
  std::printf("  machines created / destroyed %d / %d, at most %d at once\n", f.created, f.destroyed, f.peak_machines);
  std::printf("  planner CPU per tick         %.1f us (%" PRId64 " ticks, this fleet of <= %d machines)\n\n",
              static_cast<double>(f.plan_cpu_ns) / 1000.0 / static_cast<double>(f.ticks), f.ticks, f.peak_machines);

  std::printf("  hour   sessions (share of users)  machines (booting)  | launches in the hour  waited\n");
  for (int h = 0; h < 24; ++h) {
    const HourSample& s = f.hours[h];
    std::printf("  %02d:00  %8d (%5.1f %%)          %8d (%3d)       | %20d  %6d\n", h, s.sessions,
                100.0 * s.sessions / kUsers, s.machines, s.booting, s.launches, s.waited);
  }
  std::printf("\n  First scale-ups (from an empty zone, 6 h before the day):\n");
  for (const auto& s : f.early_scale_ups) std::printf("    %s\n", s.c_str());
  std::printf("  First scale-ups from the 09:00 launch peak on:\n");
  for (const auto& s : f.peak_scale_ups) std::printf("    %s\n", s.c_str());
  std::printf("  First scale-downs of the day:\n");
  for (const auto& s : f.scale_downs) std::printf("    %s\n", s.c_str());
  std::printf("\n");
}

}  // namespace

int main(int argc, char** argv) {
  Tuning chosen;
  if (argc > 1) chosen.standby_cores = std::atof(argv[1]);
  if (argc > 3) {
    chosen.window_start = argv[2];
    chosen.window_end = argv[3];
  }
  const std::int64_t cpu0 = threadCpuNanos();
  const Demand demand = makeDemand();
  std::printf(
      "bench_autoscale: one simulated day (%d users, sessions 2 cores / 4 GiB, machines 16 cores / 32 GiB "
      "= %d sessions, boot 60-120 s, planner every 10 s)\n\n",
      kUsers, kSessionsPerMachine);

  const DayFigures detail = ZoneSimulation(demand, chosen, true).run();
  printDetail(demand, chosen, detail);

  std::printf(
      "Standby sweep (same demand, boot times from the same seeded sequence; \"HH:MM-HH:MM\": a schedule, no standby "
      "outside it; "
      "\"in peaks\": waited of the launches arriving 09:00-09:05 and 13:30-13:35):\n");
  std::printf(
      "  standby (cores)   instant %%  waited  in peaks  mean wait  worst wait  VM-h    VM-h/static  created  "
      "destroyed  peak machines\n");
  const Tuning sweep[] = {{0},
                          {8},
                          {16},
                          {32},
                          {64},
                          {128},
                          {256},
                          {16, "07:00", "18:00"},
                          {0, nullptr, nullptr, false},
                          {16, nullptr, nullptr, false},
                          {128, nullptr, nullptr, false}};
  for (const Tuning& t : sweep) {
    const bool same = t.text() == chosen.text();
    const DayFigures f = same ? detail : ZoneSimulation(demand, t, false).run();
    std::printf("  %-16s  %9.2f  %6" PRId64 "  %8" PRId64 "  %9s  %10s  %6.1f  %9.1f %%  %7d  %9d  %13d\n",
                t.text().c_str(), instantShare(f), f.waited, f.waited_in_peaks,
                durationText(f.waited ? f.total_wait / f.waited : 0).c_str(), durationText(f.worst_wait).c_str(),
                vmHours(f), 100.0 * vmHours(f) / staticVmHours(f), f.created, f.destroyed, f.peak_machines);
  }

  std::printf("\nPlanner CPU per tick at 10,000 agents (thread CPU time per plan() call):\n");
  for (bool recent : {true, false}) {
    const PlannerInput in = largeFleet(recent);
    const PlanTiming t = timePlan(in);
    std::printf("  %-48s %8.1f us  (%" PRId64 " calls, %zu actions per plan)\n",
                recent ? "mixed phases, within the backoff (no drain):" : "mixed phases, scale-down tick (drains):",
                t.us_per_call, t.calls, t.actions);
  }
  std::printf("\nWhole run: %.1f s of CPU\n", static_cast<double>(threadCpuNanos() - cpu0) / 1e9);
  return 0;
}
