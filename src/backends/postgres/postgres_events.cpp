// Events between servers on LISTEN/NOTIFY through libpqxx 6.
//
// The listening connection is read by a thread of its own that never runs user code: it waits in
// poll() on the connection's socket and an eventfd (so stopping is immediate), lets libpqxx read
// the notifications and hands their payloads to a SubscriberHub, whose thread calls the callbacks.
// A lost connection shows as a readable socket whose read fails (the server's FATAL message and
// EOF, a reset, or a keepalive that went unanswered); the thread reports it, waits, reconnects and
// LISTENs again. Both connections inhibit libpqxx's silent reactivation, so a lost connection is
// always an error we see and never a reconnection that skips the availability reports.

#include "kasm/store/postgres_events.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <pqxx/pqxx>
#include <thread>

#include "share/subscriber_hub.hpp"

namespace kasm {
namespace {

using std::chrono::steady_clock;

bool isUri(const std::string& url) {
  return url.rfind("postgresql://", 0) == 0 || url.rfind("postgres://", 0) == 0;
}

// Hides the password of a URL or key=value connection string in messages.
std::string redact(std::string url) {
  if (const auto scheme = url.find("://"); scheme != std::string::npos) {
    const auto at = url.find('@', scheme);
    const auto colon = url.find(':', scheme + 3);
    if (at != std::string::npos && colon != std::string::npos && colon < at)
      url.replace(colon + 1, at - colon - 1, "***");
  }
  if (const auto pw = url.find("password="); pw != std::string::npos) {
    const auto end = url.find_first_of(" &", pw);
    url.replace(pw + 9, (end == std::string::npos ? url.size() : end) - pw - 9, "***");
  }
  return url;
}

// Adds `key` to a libpq URL or key=value string: always when `force` (libpq keeps the last value of
// a key), else only when the string does not set it already.
std::string withParameter(const std::string& url, const std::string& key, const std::string& value,
                          bool force = false) {
  if (!force && url.find(key + "=") != std::string::npos) return url;
  std::string encoded;
  if (isUri(url)) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    for (unsigned char c : value) {
      if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
        encoded += static_cast<char>(c);
      } else {
        encoded += {'%', kHex[c >> 4], kHex[c & 15]};
      }
    }
    return url + (url.find('?') == std::string::npos ? "?" : "&") + key + "=" + encoded;
  }
  for (char c : value) {
    if (c == '\'' || c == '\\') encoded += '\\';
    encoded += c;
  }
  return url + " " + key + "='" + encoded + "'";
}

std::string trimMessage(std::string m) {
  while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
  return m;
}

bool validChannelName(const std::string& name) {
  if (name.empty() || name.size() > 63) return false;
  if (!(std::islower(static_cast<unsigned char>(name[0])) || name[0] == '_')) return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; });
}

// Calls `on_payload` for each notification of the channel while libpqxx reads the connection.
class Receiver final : public pqxx::notification_receiver {
 public:
  Receiver(pqxx::connection_base& conn, const std::string& channel, std::function<void(std::string)> on_payload)
      : pqxx::notification_receiver(conn, channel), on_payload_(std::move(on_payload)) {}
  void operator()(const std::string& payload, int) override { on_payload_(payload); }

 private:
  std::function<void(std::string)> on_payload_;
};

class PostgresEventChannel final : public spi::EventChannel {
 public:
  explicit PostgresEventChannel(PostgresEventOptions options)
      : options_(std::move(options)),
        redacted_(redact(options_.url)),
        wake_fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
    auto url = withParameter(options_.url, "connect_timeout", std::to_string(options_.connect_timeout.count()));
    url = withParameter(url, "client_encoding", "UTF8");
    // A silent peer (a host gone, a firewall dropping the connection) breaks the connection after
    // about dead_peer_timeout, idle (keepalives) or not (unacknowledged data), instead of hours.
    const auto probe_s = std::max<long long>(1, options_.dead_peer_timeout.count() / 2000);
    url = withParameter(url, "keepalives", "1");
    url = withParameter(url, "keepalives_idle", std::to_string(probe_s));
    url = withParameter(url, "keepalives_interval", "1");
    url = withParameter(url, "keepalives_count", std::to_string(probe_s));
    url = withParameter(url, "tcp_user_timeout", std::to_string(options_.dead_peer_timeout.count()));
    listen_url_ = withParameter(url, "application_name", options_.application_name, true);
    publish_url_ = withParameter(url, "application_name", options_.application_name + "-publish", true);
    thread_ = std::thread([this] { run(); });
  }

  ~PostgresEventChannel() override {
    {
      std::lock_guard lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    wake();
    thread_.join();
    std::lock_guard lk(publish_mu_);
    publisher_.reset();
    if (wake_fd_ >= 0) ::close(wake_fd_);
  }

  // Waits for the listener's first connection attempt to end (or `timeout`), then starts reporting
  // availability changes.
  void waitForFirstAttempt(Duration timeout) {
    std::unique_lock lk(mu_);
    cv_.wait_for(lk, timeout, [&] { return attempted_; });
    reporting_ = true;
  }

  std::string_view backendName() const override { return "postgresql"; }
  std::size_t maxEventBytes() const override { return kPostgresMaxEventBytes; }
  bool available() const override { return available_.load(); }
  void onAvailability(spi::AvailabilityCallback callback) override {
    hub_.setAvailabilityCallback(std::move(callback));
  }
  Result<std::unique_ptr<spi::Subscription>> subscribe(spi::EventCallback callback) override {
    return hub_.addEvents(std::move(callback));
  }

  Result<void> publish(std::string_view event) override {
    if (event.size() > kPostgresMaxEventBytes) {
      return invalidArgument("postgresql events: an event of " + std::to_string(event.size()) +
                             " bytes is over the NOTIFY limit of " + std::to_string(kPostgresMaxEventBytes));
    }
    // libpq ends a text parameter at its first NUL: refused, not silently cut short.
    if (event.find('\0') != std::string_view::npos) {
      return invalidArgument("postgresql events: NOTIFY payloads are text and cannot carry a NUL byte");
    }
    std::lock_guard lk(publish_mu_);
    KASM_RETURN_IF_ERROR(connectPublisher());
    try {
      pqxx::nontransaction t(*publisher_);
      t.exec_params("SELECT pg_notify($1, $2)", options_.channel, std::string(event));
      return {};
    } catch (const pqxx::broken_connection& e) {
      publisher_.reset();
      return unavailable("postgresql events: lost PostgreSQL at " + redacted_ + ": " + trimMessage(e.what()));
    } catch (const pqxx::sql_error& e) {
      const std::string state = e.sqlstate();
      // Class 22, data exceptions: the payload does not fit the database's encoding or limits.
      if (state.rfind("22", 0) == 0) return invalidArgument("postgresql events: " + trimMessage(e.what()));
      if (!publisher_->is_open() || state.rfind("08", 0) == 0 || state.rfind("57P", 0) == 0) {
        publisher_.reset();
        return unavailable("postgresql events: PostgreSQL is unavailable: " + trimMessage(e.what()));
      }
      return internalError("postgresql events: NOTIFY failed (" + state + "): " + trimMessage(e.what()));
    } catch (const std::exception& e) {
      const bool lost = !publisher_->is_open();
      publisher_.reset();
      if (lost) return unavailable("postgresql events: lost PostgreSQL at " + redacted_ + ": " + trimMessage(e.what()));
      return internalError("postgresql events: NOTIFY failed: " + trimMessage(e.what()));
    }
  }

 private:
  // With publish_mu_ held: a live publishing connection, or why there is none.
  Result<void> connectPublisher() {
    // An idle connection has nothing to read unless the server ended it (its FATAL message, EOF):
    // checked first, so an event after a server restart goes out on a new connection instead of
    // failing on the dead one. The message and the EOF may take a read each, hence the loop.
    for (int reads = 0; publisher_ && reads < 4; ++reads) {
      pollfd fd{publisher_->sock(), POLLIN, 0};
      if (fd.fd >= 0 && ::poll(&fd, 1, 0) == 0) break;
      try {
        publisher_->get_notifs();
      } catch (const std::exception&) {
      }
      if (!publisher_->is_open()) publisher_.reset();
    }
    if (publisher_) return {};
    if (steady_clock::now() < retry_after_) return unavailable(last_publish_error_);
    try {
      auto conn = std::make_unique<pqxx::connection>(publish_url_);
      conn->inhibit_reactivation(true);
      publisher_ = std::move(conn);
      return {};
    } catch (const std::exception& e) {
      last_publish_error_ = "postgresql events: cannot reach PostgreSQL at " + redacted_ + ": " + trimMessage(e.what());
      retry_after_ = steady_clock::now() + options_.publish_retry_after;
      return unavailable(last_publish_error_);
    }
  }

  void wake() {
    std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
  }

  bool stopping() {
    std::lock_guard lk(mu_);
    return stop_;
  }

  // The listener's attempts ended (one way or the other) and availability is now `available`.
  void attemptDone(bool available) {
    std::lock_guard lk(mu_);
    attempted_ = true;
    cv_.notify_all();
    if (available_.exchange(available) == available || stop_) return;
    if (reporting_) hub_.deliverAvailability(available);
  }

  // Waits `d`, or less when stopping; false when stopping.
  bool pause(Duration d) {
    std::unique_lock lk(mu_);
    return !cv_.wait_for(lk, d, [&] { return stop_; });
  }

  void run() {
    auto backoff = options_.first_backoff;
    while (!stopping()) {
      std::unique_ptr<pqxx::connection> conn;
      std::unique_ptr<Receiver> receiver;
      try {
        conn = std::make_unique<pqxx::connection>(listen_url_);
        conn->inhibit_reactivation(true);
        // Its constructor sends LISTEN; libpqxx swallows a connection lost meanwhile, so look again.
        receiver = std::make_unique<Receiver>(*conn, options_.channel,
                                              [this](std::string payload) { hub_.deliverEvent(std::move(payload)); });
        if (!conn->is_open()) throw pqxx::broken_connection("connection lost during LISTEN");
      } catch (const std::exception&) {
        receiver.reset();
        conn.reset();
        attemptDone(false);
        if (!pause(backoff)) break;
        backoff = std::min(backoff * 2, options_.max_backoff);
        continue;
      }
      backoff = options_.first_backoff;
      attemptDone(true);
      serve(*conn);
      // Before the connection it refers to; UNLISTEN on a live connection, nothing on a lost one.
      receiver.reset();
      conn.reset();
      if (stopping()) break;
      attemptDone(false);
      if (!pause(options_.first_backoff)) break;
    }
  }

  // Reads notifications until the connection is lost or the channel stops.
  void serve(pqxx::connection& conn) {
    for (;;) {
      try {
        // Reads what arrived, hands notifications to the receiver; throws when the read fails.
        conn.get_notifs();
        if (!conn.is_open()) return;
      } catch (const std::exception&) {
        return;
      }
      pollfd fds[2] = {{conn.sock(), POLLIN, 0}, {wake_fd_, POLLIN, 0}};
      if (fds[0].fd < 0) return;
      // The timeout only bounds how long a missed wake-up could go unnoticed.
      ::poll(fds, 2, 1000);
      if (fds[1].revents & POLLIN) {
        std::uint64_t n;
        [[maybe_unused]] auto r = ::read(wake_fd_, &n, sizeof n);
      }
      if (stopping()) return;
    }
  }

  const PostgresEventOptions options_;
  const std::string redacted_;
  std::string listen_url_;
  std::string publish_url_;
  const int wake_fd_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool attempted_ = false;
  bool reporting_ = false;
  std::atomic<bool> available_{false};

  std::mutex publish_mu_;
  std::unique_ptr<pqxx::connection> publisher_;
  steady_clock::time_point retry_after_{};
  std::string last_publish_error_;

  // The destructor joins the listener before any member goes, so the hub outlives its only feeder.
  share::SubscriberHub hub_;
  std::thread thread_;
};

}  // namespace

Result<std::unique_ptr<spi::EventChannel>> openPostgresEventChannel(PostgresEventOptions options) {
  if (options.url.empty()) return invalidArgument("postgresql events: the url must not be empty");
  if (!validChannelName(options.channel)) {
    return invalidArgument("postgresql events: channel \"" + options.channel +
                           "\" is not a plain identifier ([a-z_][a-z0-9_]{0,62})");
  }
  if (options.connect_timeout.count() <= 0 || options.dead_peer_timeout.count() <= 0 ||
      options.first_backoff.count() <= 0 || options.max_backoff < options.first_backoff) {
    return invalidArgument("postgresql events: timeouts and backoffs must be positive (max_backoff >= first_backoff)");
  }
  if (options.application_name.empty()) options.application_name = "kasm-events";
  const auto wait = std::chrono::duration_cast<Duration>(options.connect_timeout) * 2;
  auto channel = std::make_unique<PostgresEventChannel>(std::move(options));
  channel->waitForFirstAttempt(wait);
  return std::unique_ptr<spi::EventChannel>(std::move(channel));
}

}  // namespace kasm
