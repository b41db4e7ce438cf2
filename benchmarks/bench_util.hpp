#pragma once

// What the benchmarks share: CPU seconds of this process and of others, read from the kernel.
// Header-only: each benchmark is its own executable.

#include <dirent.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace kasm::bench {

// User + system CPU seconds of this process so far, every thread.
inline double processCpuSeconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  auto sec = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
  return sec(u.ru_utime) + sec(u.ru_stime);
}

// One process as /proc/<pid>/stat shows it.
struct ProcStat {
  pid_t ppid = 0;
  double cpu_seconds = 0;  // utime + stime, in clock ticks' resolution (10 ms).
};

// nullopt when the process is gone (or is not ours to read).
inline std::optional<ProcStat> readProcStat(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return std::nullopt;
  // After "pid (comm) ": state is field 3, ppid 4, utime and stime 14 and 15. The command may hold
  // spaces and parentheses, so the fields are counted from the last ')'.
  const auto close = line.rfind(')');
  if (close == std::string::npos || close + 2 > line.size()) return std::nullopt;
  std::istringstream fields(line.substr(close + 2));
  std::string state;
  long ppid = 0, skip = 0, utime = 0, stime = 0;
  fields >> state >> ppid;
  for (int f = 5; f < 14; ++f) fields >> skip;
  fields >> utime >> stime;
  if (!fields) return std::nullopt;
  return ProcStat{static_cast<pid_t>(ppid),
                  static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK))};
}

// `root` and its children (nginx's workers, websockify's forks), as listed now.
inline std::vector<pid_t> processTree(pid_t root) {
  std::vector<pid_t> out;
  if (root <= 0) return out;
  DIR* proc = ::opendir("/proc");
  if (!proc) return out;
  while (dirent* e = ::readdir(proc)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    const auto pid = static_cast<pid_t>(std::atol(e->d_name));
    if (pid == root) {
      out.push_back(pid);
    } else if (auto stat = readProcStat(pid); stat && stat->ppid == root) {
      out.push_back(pid);
    }
  }
  ::closedir(proc);
  return out;
}

// CPU seconds of `root` and its children.
inline double treeCpuSeconds(pid_t root) {
  double total = 0;
  for (pid_t pid : processTree(root)) {
    if (auto stat = readProcStat(pid)) total += stat->cpu_seconds;
  }
  return total;
}

}  // namespace kasm::bench
