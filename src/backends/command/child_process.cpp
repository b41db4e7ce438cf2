// One child process with bounded time and output: posix_spawn, a process group of its own, poll.

#include "backends/command/child_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string_view>
#include <system_error>
#include <utility>

namespace kasm::command::detail {
namespace {

using SteadyClock = std::chrono::steady_clock;

constexpr std::size_t kReadChunk = 64u << 10;

std::string errnoText(int err) {
  return std::error_code(err, std::system_category()).message();
}

// An owned file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

// Moves `fd` above 2. An embedder that closed its stdin could get descriptor 0 from pipe2(), and the
// child's dup2 onto 0, 1 and 2 would then overwrite one pipe end with another.
Result<void> liftAboveStdio(Fd& fd) {
  if (fd.get() > 2) return {};
  const int moved = ::fcntl(fd.get(), F_DUPFD_CLOEXEC, 3);
  if (moved < 0) return unavailable("cannot duplicate a pipe descriptor: " + errnoText(errno));
  fd = Fd(moved);
  return {};
}

Result<void> makePipe(Fd& read_end, Fd& write_end) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return unavailable("cannot create a pipe: " + errnoText(errno));
  read_end = Fd(fds[0]);
  write_end = Fd(fds[1]);
  KASM_RETURN_IF_ERROR(liftAboveStdio(read_end));
  return liftAboveStdio(write_end);
}

void setNonBlocking(const Fd& fd) {
  const int flags = ::fcntl(fd.get(), F_GETFL);
  if (flags >= 0) (void)::fcntl(fd.get(), F_SETFL, flags | O_NONBLOCK);
}

// Blocks SIGPIPE in the calling thread while a child runs, so that writing to a child that closed
// its stdin yields EPIPE instead of killing the embedding process, and discards the SIGPIPE such a
// write left pending (unless one was already pending before). Restores the mask on destruction.
class SigpipeBlock {
 public:
  SigpipeBlock() {
    sigset_t pipe_only;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    sigset_t pending;
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &pipe_only, &previous_);
  }
  ~SigpipeBlock() {
    if (!was_pending_) {
      sigset_t pipe_only;
      sigemptyset(&pipe_only);
      sigaddset(&pipe_only, SIGPIPE);
      const timespec zero{0, 0};
      while (sigtimedwait(&pipe_only, nullptr, &zero) == SIGPIPE) {
      }
    }
    pthread_sigmask(SIG_SETMASK, &previous_, nullptr);
  }
  SigpipeBlock(const SigpipeBlock&) = delete;
  SigpipeBlock& operator=(const SigpipeBlock&) = delete;

 private:
  sigset_t previous_;
  bool was_pending_ = false;
};

// Kills the group and reaps the child unless released: no zombie and no orphaned group is left
// behind by an early return.
class ChildReaper {
 public:
  explicit ChildReaper(pid_t pid) : pid_(pid) {}
  ~ChildReaper() {
    if (pid_ <= 0) return;
    ::kill(-pid_, SIGKILL);
    while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
  ChildReaper(const ChildReaper&) = delete;
  ChildReaper& operator=(const ChildReaper&) = delete;
  void release() { pid_ = -1; }

 private:
  pid_t pid_;
};

// posix_spawn's attribute and file-action objects, destroyed on every path.
struct SpawnSetup {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attributes;
  SpawnSetup() {
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attributes);
  }
  ~SpawnSetup() {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
  }
  SpawnSetup(const SpawnSetup&) = delete;
  SpawnSetup& operator=(const SpawnSetup&) = delete;
};

std::vector<char*> cStrings(const std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (const auto& s : strings) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

Error spawnError(const ChildRequest& request, int err) {
  const std::string& path = request.argv.front();
  struct stat st {};
  const bool runnable = ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
  if (err == ENOENT || err == EACCES || err == ENOTDIR || err == ENOEXEC || err == EPERM || err == ELOOP) {
    if (!runnable) return failedPrecondition("cannot run " + path + ": " + errnoText(err));
    return failedPrecondition("cannot run " + path + " in " + request.working_directory + ": " + errnoText(err));
  }
  return unavailable("cannot start " + path + ": " + errnoText(err));
}

Result<pid_t> spawnChild(const ChildRequest& request, const Fd& child_in, const Fd& child_out, const Fd& child_err) {
  SpawnSetup setup;
  posix_spawn_file_actions_adddup2(&setup.actions, child_in.get(), STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&setup.actions, child_out.get(), STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&setup.actions, child_err.get(), STDERR_FILENO);
  // Our pipes are close-on-exec; descriptors the embedder (or a library) opened without the flag
  // are not, and must not reach an administrator's script either.
  posix_spawn_file_actions_addclosefrom_np(&setup.actions, STDERR_FILENO + 1);
  posix_spawn_file_actions_addchdir_np(&setup.actions, request.working_directory.c_str());

  // The embedder's threads may block signals or ignore SIGPIPE; the child starts clean.
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&setup.attributes, &none);
  sigset_t all;
  sigfillset(&all);
  sigdelset(&all, SIGKILL);
  sigdelset(&all, SIGSTOP);
  posix_spawnattr_setsigdefault(&setup.attributes, &all);
  posix_spawnattr_setpgroup(&setup.attributes, 0);
  posix_spawnattr_setflags(&setup.attributes, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  auto argv = cStrings(request.argv);
  auto envp = cStrings(request.environment);
  pid_t pid = -1;
  const int err = ::posix_spawn(&pid, argv[0], &setup.actions, &setup.attributes, argv.data(), envp.data());
  if (err != 0) return spawnError(request, err);
  return pid;
}

// A descriptor that becomes readable when the child exits (Linux 5.3+), to wake poll(); invalid
// where unsupported, and the loop then checks every kFallbackTick.
Fd openPidFd(pid_t pid) {
#ifdef SYS_pidfd_open
  const long fd = ::syscall(SYS_pidfd_open, pid, 0);
  if (fd >= 0) return Fd(static_cast<int>(fd));
#endif
  (void)pid;
  return Fd();
}
constexpr std::chrono::milliseconds kFallbackTick{20};

bool hasExited(pid_t pid) {
  siginfo_t info{};
  // WNOWAIT: the child stays a zombie, so its pid (and group id) cannot be reused until reaped.
  if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0) return info.si_pid == pid;
  // ECHILD: someone else reaped it (an embedder ignoring SIGCHLD); waitpid() below reports that.
  return errno != EINTR;
}

// Reads what is ready, once. Keeps at most `room` more bytes in `sink` and sets `overflow` when more
// arrived. Returns how many bytes were read (0 when none were ready); EOF or an error closes `fd`.
std::size_t readSome(Fd& fd, std::string& sink, std::size_t room, bool& overflow) {
  char buffer[kReadChunk];
  const ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
  if (n > 0) {
    const auto got = static_cast<std::size_t>(n);
    sink.append(buffer, std::min(got, room));
    if (got > room) overflow = true;
    return got;
  }
  if (n == 0 || (errno != EAGAIN && errno != EINTR)) fd.reset();
  return 0;
}

void keepTail(std::string& s, std::size_t keep, std::size_t slack) {
  if (s.size() > keep + slack) s.erase(0, s.size() - keep);
}

int millisUntil(SteadyClock::time_point t, SteadyClock::time_point now) {
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(t - now).count();
  return static_cast<int>(std::clamp<long long>(ms, 0, 3'600'000));
}

}  // namespace

Result<ChildOutcome> runChild(const ChildRequest& request) {
  if (request.argv.empty() || request.argv.front().empty() || request.argv.front().front() != '/')
    return invalidArgument("the executable must be given by an absolute path");

  SigpipeBlock sigpipe_block;
  Fd in_read, in_write, out_read, out_write, err_read, err_write;
  KASM_RETURN_IF_ERROR(makePipe(in_read, in_write));
  KASM_RETURN_IF_ERROR(makePipe(out_read, out_write));
  KASM_RETURN_IF_ERROR(makePipe(err_read, err_write));
  KASM_ASSIGN_OR_RETURN(const pid_t pid, spawnChild(request, in_read, out_write, err_write));
  ChildReaper reaper(pid);
  in_read.reset();
  out_write.reset();
  err_write.reset();
  setNonBlocking(in_write);
  setNonBlocking(out_read);
  setNonBlocking(err_read);
  Fd pid_fd = openPidFd(pid);

  ChildOutcome outcome;
  std::string_view input = request.input;
  if (input.empty()) in_write.reset();
  const auto deadline = SteadyClock::now() + request.timeout;
  bool ending = false, killed = false;
  SteadyClock::time_point kill_at{};
  auto endGroup = [&] {
    if (ending) return;
    ending = true;
    ::kill(-pid, SIGTERM);
    kill_at = SteadyClock::now() + request.kill_grace;
    in_write.reset();
  };
  auto takeStdout = [&] {
    bool overflow = false;
    const std::size_t n = readSome(out_read, outcome.output, request.stdout_limit - outcome.output.size(), overflow);
    if (overflow) {
      outcome.stdout_overflow = true;
      out_read.reset();  // The child gets EPIPE or SIGPIPE if it writes on; it is being ended anyway.
      endGroup();
    }
    return n;
  };
  auto takeStderr = [&] {
    bool ignored = false;
    const std::size_t n = readSome(err_read, outcome.error_tail, kReadChunk, ignored);
    keepTail(outcome.error_tail, request.stderr_keep, kReadChunk);
    return n;
  };

  while (!hasExited(pid)) {
    const auto now = SteadyClock::now();
    if (!ending && now >= deadline) {
      outcome.timed_out = true;
      endGroup();
    }
    if (ending && !killed && now >= kill_at) {
      ::kill(-pid, SIGKILL);
      killed = true;
    }
    // Without a pidfd nothing wakes poll() when the child exits, so it wakes itself every tick.
    int wait_ms = killed ? -1 : millisUntil(ending ? kill_at : deadline, now);
    if (!pid_fd.valid()) {
      const int tick = static_cast<int>(kFallbackTick.count());
      wait_ms = wait_ms < 0 ? tick : std::min(wait_ms, tick);
    }

    pollfd fds[4];
    nfds_t count = 0;
    auto watch = [&](const Fd& fd, short events) {
      if (!fd.valid()) return -1;
      fds[count] = pollfd{fd.get(), events, 0};
      return static_cast<int>(count++);
    };
    const int in_at = watch(in_write, POLLOUT);
    const int out_at = watch(out_read, POLLIN);
    const int err_at = watch(err_read, POLLIN);
    watch(pid_fd, POLLIN);
    if (::poll(fds, count, wait_ms) < 0) {
      if (errno == EINTR) continue;
      return unavailable("poll failed: " + errnoText(errno));  // The reaper ends the child.
    }
    if (in_at >= 0 && fds[in_at].revents != 0) {
      const ssize_t n = ::write(in_write.get(), input.data(), input.size());
      if (n > 0) input.remove_prefix(static_cast<std::size_t>(n));
      // EPIPE: the child does not read its input; what it answers still counts.
      if (input.empty() || (n < 0 && errno != EAGAIN && errno != EINTR)) in_write.reset();
    }
    if (out_at >= 0 && fds[out_at].revents != 0) takeStdout();
    if (err_at >= 0 && fds[err_at].revents != 0) takeStderr();
  }

  // Whatever the child wrote before it exited is in the pipes now; take it without waiting for
  // EOF, which a descendant holding the pipes could delay indefinitely. Bounded by the limits.
  while (out_read.valid() && takeStdout() > 0) {
  }
  for (std::size_t drained = 0; err_read.valid() && drained <= request.stderr_keep + kReadChunk;) {
    const std::size_t n = takeStderr();
    if (n == 0) break;
    drained += n;
  }
  keepTail(outcome.error_tail, request.stderr_keep, 0);

  // A child that was ended takes what is left of its group with it; the zombie keeps the id ours.
  if (ending) ::kill(-pid, SIGKILL);
  int status = 0;
  pid_t reaped;
  while ((reaped = ::waitpid(pid, &status, 0)) < 0 && errno == EINTR) {
  }
  reaper.release();
  if (reaped != pid) return internalError("waitpid lost the child " + std::to_string(pid) + ": " + errnoText(errno));
  if (WIFEXITED(status)) {
    outcome.exited = true;
    outcome.exit_status = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    outcome.signal = WTERMSIG(status);
  }
  return outcome;
}

}  // namespace kasm::command::detail
