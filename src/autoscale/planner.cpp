#include "kasm/autoscale/planner.hpp"

#include <algorithm>
#include <cstdio>

namespace kasm::autoscale {

namespace {

std::string minutes(Duration d) {
  const auto m = std::chrono::duration_cast<std::chrono::minutes>(d).count();
  if (m >= 1) return std::to_string(m) + " min";
  return std::to_string(std::chrono::duration_cast<std::chrono::seconds>(d).count()) + " s";
}

bool dayListed(const AutoscaleSchedule& s, int weekday) {
  return s.days.empty() || std::find(s.days.begin(), s.days.end(), weekday) != s.days.end();
}

// Division rounded up, for counts of machines.
std::int64_t ceilDiv(std::int64_t a, std::int64_t b) {
  return (a + b - 1) / b;
}

// What shortfall of `need` against `free` calls for in machines of `machine` each, with the
// dimension that needs the most: 0 when nothing is short; -1 when something is short that a
// machine does not bring (a standby of GPUs from machines without any).
struct Shortfall {
  std::int64_t machines = 0;
  std::string what;  // "standby cores 6 < 16"
};

Shortfall agentShortfall(const Resources& need, const Resources& free, const Resources& machine) {
  Shortfall out;
  auto consider = [&](std::int64_t n, std::int64_t f, std::int64_t per, std::string text) {
    if (n <= f) return;
    const std::int64_t count = per > 0 ? ceilDiv(n - f, per) : -1;
    // The dimension that needs the most machines names the shortfall; one that machines do not
    // bring (-1) only when no other is short.
    if (out.machines == 0 || (out.machines == -1 && count > 0) || (out.machines > 0 && count > out.machines)) {
      out.machines = count;
      out.what = std::move(text);
    }
  };
  consider(need.millicores, free.millicores, machine.millicores,
           "standby cores " + formatCores(free.millicores) + " < " + formatCores(need.millicores));
  consider(need.memory_bytes, free.memory_bytes, machine.memory_bytes,
           "standby memory " + formatMemory(free.memory_bytes) + " < " + formatMemory(need.memory_bytes));
  consider(need.gpus, free.gpus, machine.gpus,
           "standby GPUs " + std::to_string(free.gpus) + " < " + std::to_string(need.gpus));
  return out;
}

std::string standbyText(const Plan& p, bool servers) {
  if (servers) return "free sessions " + std::to_string(p.sessions_free) + " / " + std::to_string(p.sessions_target);
  std::string s =
      "standby cores " + formatCores(p.standby_free.millicores) + " / " + formatCores(p.standby_target.millicores);
  if (p.standby_target.memory_bytes > 0) {
    s += ", memory " + formatMemory(p.standby_free.memory_bytes) + " / " + formatMemory(p.standby_target.memory_bytes);
  }
  if (p.standby_target.gpus > 0) {
    s += ", GPUs " + std::to_string(p.standby_free.gpus) + " / " + std::to_string(p.standby_target.gpus);
  }
  return s;
}

}  // namespace

std::string formatCores(std::int64_t millicores) {
  char buf[32];
  if (millicores % 1000 == 0) {
    std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(millicores / 1000));
  } else if (millicores > -1000 && millicores < 1000) {
    std::snprintf(buf, sizeof buf, "%.2f", static_cast<double>(millicores) / 1000.0);  // "0.03", not "0.0".
  } else {
    std::snprintf(buf, sizeof buf, "%.1f", static_cast<double>(millicores) / 1000.0);
  }
  return buf;
}

std::string formatMemory(std::int64_t bytes) {
  char buf[32];
  if (bytes >= Resources::kGiB || bytes == 0) {
    const double g = static_cast<double>(bytes) / static_cast<double>(Resources::kGiB);
    if (bytes % Resources::kGiB == 0) {
      std::snprintf(buf, sizeof buf, "%lld GiB", static_cast<long long>(bytes / Resources::kGiB));
    } else {
      std::snprintf(buf, sizeof buf, "%.1f GiB", g);
    }
  } else {
    std::snprintf(buf, sizeof buf, "%lld MiB", static_cast<long long>(bytes / Resources::kMiB));
  }
  return buf;
}

std::size_t Plan::count(ActionKind k) const {
  return static_cast<std::size_t>(
      std::count_if(actions.begin(), actions.end(), [k](const Action& a) { return a.kind == k; }));
}

bool inSchedule(const AutoscaleConfig& config, const TimeZone& tz, TimePoint now) {
  if (config.schedules.empty()) return true;
  const LocalTime t = tz.local(now);
  const int yesterday = (t.weekday + 6) % 7;
  for (const auto& s : config.schedules) {
    const auto start = scheduleClockMinutes(s.start), end = scheduleClockMinutes(s.end);
    if (!start || !end) continue;
    if (*end > *start) {
      if (dayListed(s, t.weekday) && t.minute_of_day >= *start && t.minute_of_day < *end) return true;
    } else {  // Crosses midnight: from start on the listed day into the next morning.
      if (dayListed(s, t.weekday) && t.minute_of_day >= *start) return true;
      if (dayListed(s, yesterday) && t.minute_of_day < *end) return true;
    }
  }
  return false;
}

Plan plan(const PlannerInput& in) {
  const AutoscaleConfig& c = in.config;
  const bool servers = c.forServers();
  const std::string unit = servers ? "server" : "agent";
  auto machines = [&](std::int64_t n) { return std::to_string(n) + " " + unit + (n == 1 ? "" : "s"); };
  Plan p;
  p.in_schedule = inSchedule(c, in.time_zone, in.now);
  if (p.in_schedule) {
    p.standby_target = c.standby;
    p.sessions_target = c.min_standby_sessions;
  }
  p.standby_target += in.unplaced;
  p.sessions_target += in.unplaced_sessions;
  if (!servers && in.boot_time.count() > 0 && in.growth_window.count() > 0) {
    const double boots = static_cast<double>(in.boot_time.count()) / static_cast<double>(in.growth_window.count());
    auto lead = [&](std::int64_t grew) {
      return grew > 0 ? static_cast<std::int64_t>(static_cast<double>(grew) * boots) : 0;
    };
    p.ahead = {lead(in.growth.millicores), lead(in.growth.memory_bytes),
               static_cast<std::int32_t>(lead(in.growth.gpus))};
    p.standby_target += p.ahead;
  }
  p.standby_free = in.other_available;
  p.sessions_free = in.other_free_sessions;

  // Machines that go whatever the demand, and what the others bring.
  std::vector<const FleetMember*> idle;
  std::int32_t booting = 0;
  for (const auto& m : in.fleet) {
    const Duration age = in.now - m.created_at;
    switch (m.phase) {
      case VmPhase::kDestroying:
      case VmPhase::kMissing: continue;
      case VmPhase::kDraining:
        if (m.sessions == 0) p.actions.push_back({ActionKind::kDestroy, m.id, "drained: no session left"});
        continue;
      case VmPhase::kCreating:
      case VmPhase::kBooting:
        if (!m.checked_in) {
          if (age > c.provision_timeout) {
            p.actions.push_back({ActionKind::kDestroy, m.id,
                                 "did not check in within " + minutes(c.provision_timeout) + " (provision timeout)"});
            continue;
          }
          ++p.instances;
          ++booting;
          if (servers) {
            p.sessions_free += c.server_max_sessions;
          } else {
            p.standby_free += m.capacity.isZero() ? in.machine_capacity : m.capacity;
          }
          continue;
        }
        break;  // Checked in: counted as ready below (the loop moves its phase).
      case VmPhase::kReady: break;
    }
    if (!c.reusable && m.served) {
      if (m.sessions == 0) {
        p.actions.push_back({ActionKind::kDestroy, m.id, "not reusable: its session ended"});
        continue;
      }
      ++p.instances;  // Busy with its one session; brings nothing more.
      continue;
    }
    ++p.instances;
    if (servers) {
      p.sessions_free += c.reusable ? m.free_sessions : (m.sessions == 0 ? 1 : 0);
    } else {
      p.standby_free += c.reusable ? m.available : (m.sessions == 0 ? m.available : Resources{});
    }
    if (m.sessions == 0 && m.idle_since) idle.push_back(&m);
  }

  // ---- more machines ----
  std::int64_t wanted = 0;
  std::string why;
  if (servers) {
    if (p.sessions_free < p.sessions_target) {
      const std::int64_t per = c.reusable ? c.server_max_sessions : 1;
      wanted = ceilDiv(p.sessions_target - p.sessions_free, per);
      why = "free sessions " + std::to_string(p.sessions_free) + " < " + std::to_string(p.sessions_target);
    }
  } else {
    const auto s = agentShortfall(p.standby_target, p.standby_free, in.machine_capacity);
    if (s.machines > 0) {
      wanted = s.machines;
      why = s.what;
      if (p.ahead.millicores > 0) {
        const double per_minute = static_cast<double>(in.growth.millicores) /
                                  std::chrono::duration<double, std::ratio<60>>(in.growth_window).count();
        why += " (" + formatCores(p.ahead.millicores) + " of them ahead of demand growing " +
               formatCores(static_cast<std::int64_t>(per_minute)) + " cores/min, boot " +
               std::to_string(std::chrono::duration_cast<std::chrono::seconds>(in.boot_time).count()) + " s)";
      }
    } else if (s.machines == -1) {
      if (in.machine_capacity.isZero()) {
        // Nothing is known of a machine yet: make one and learn from its first check-in.
        wanted = booting == 0 ? 1 : 0;
        why = s.what + " (a machine's capacity is not known yet: one at a time until one checks in)";
      } else {
        why = s.what + ", but a machine of this configuration brings none (set agent_overrides?)";
      }
    }
  }
  if (p.instances + wanted < c.min_instances) {
    wanted = c.min_instances - p.instances;
    if (why.empty()) why = machines(p.instances) + " < min_instances " + std::to_string(c.min_instances);
  }
  const std::int64_t room = std::max<std::int64_t>(0, c.max_instances - p.instances);
  const std::int64_t made = std::min(wanted, room);
  for (std::int64_t i = 0; i < made; ++i) p.actions.push_back({ActionKind::kCreate, std::nullopt, why});

  // ---- fewer machines: only when nothing was wanted, and not within the backoff of a scale-up ----
  std::vector<std::string> drained;
  const bool backing_off = in.last_scale_up && in.now - *in.last_scale_up < c.downscale_backoff;
  if (wanted == 0 && why.empty() && !backing_off) {
    std::sort(idle.begin(), idle.end(), [](const FleetMember* a, const FleetMember* b) {
      return *a->idle_since < *b->idle_since || (*a->idle_since == *b->idle_since && a->id.str() < b->id.str());
    });
    for (const FleetMember* m : idle) {
      const Duration idle_for = in.now - *m->idle_since;
      if (idle_for < c.downscale_backoff) continue;
      if (p.instances - 1 < c.min_instances) break;
      std::string left;
      if (servers) {
        const std::int32_t after = p.sessions_free - m->free_sessions;
        if (after < p.sessions_target) continue;
        p.sessions_free = after;
        left = "free sessions stay " + std::to_string(after) + " >= " + std::to_string(p.sessions_target);
      } else {
        Resources after = p.standby_free;
        after -= m->available;
        if (!after.fits(p.standby_target)) continue;
        p.standby_free = after;
        left =
            "standby cores stay " + formatCores(after.millicores) + " >= " + formatCores(p.standby_target.millicores);
      }
      --p.instances;
      const std::string reason =
          "idle " + minutes(idle_for) + " >= backoff " + minutes(c.downscale_backoff) + "; " + left;
      p.actions.push_back({ActionKind::kDrain, m->id, reason});
      drained.push_back(reason);
    }
  }

  // ---- the line people read ----
  std::string head = "zone " + (in.zone_name.empty() ? c.zone_id.str() : in.zone_name) + ": ";
  if (made > 0) {
    p.summary = head + "+" + machines(made) + ", " + why;
    if (made < wanted)
      p.summary += " (" + std::to_string(wanted - made) + " more wanted, max_instances " +
                   std::to_string(c.max_instances) + " reached)";
  } else if (wanted > 0) {
    p.summary =
        head + "no machine made: " + why + ", but max_instances " + std::to_string(c.max_instances) + " is reached";
  } else if (!why.empty()) {
    p.summary = head + "no machine made: " + why;
  } else if (!drained.empty()) {
    p.summary = head + "-" + machines(static_cast<std::int64_t>(drained.size())) + ", " + drained.front();
  } else {
    p.summary = head + "steady, " + machines(p.instances) + ", " + standbyText(p, servers);
    if (backing_off) p.summary += " (no scale-down within " + minutes(c.downscale_backoff) + " of the last scale-up)";
  }
  if (!p.in_schedule) p.summary += " [outside its schedule: no standby kept]";
  return p;
}

}  // namespace kasm::autoscale
