// kasm-server: file transfer in and out of a session, served by the proxy on the viewer's own
// origin (/desktop/<session>/kasm/files...), authorized like the desktop; the manager decides who
// may (the owner, as their groups allow) and moves the bytes through the session's agent.
//
//   GET  kasm/files                  what the viewer may do, and ~/Downloads
//   POST kasm/files/upload?name=N    the body becomes ~/Uploads/N
//   GET  kasm/files/download/N       ~/Downloads/N as an attachment
//   WebSocket kasm/audio             the desktop's sound: {"format","rate","channels"}, then PCM
//   WebSocket kasm/microphone        PCM in, to the desktop's default source

#include <boost/json.hpp>
#include <condition_variable>
#include <deque>
#include <thread>

#include "server_app.hpp"

namespace kasm::server {

namespace {

namespace json = boost::json;

// "name" of a query string, decoded; empty when absent.
Result<std::string> queryParameter(std::string_view query, std::string_view key) {
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const auto eq = pair.find('=');
    if (pair.substr(0, eq) != key) continue;
    return net::percentDecode(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1), true);
  }
  return std::string();
}

std::string iso(TimePoint t) {
  const std::time_t secs = std::chrono::system_clock::to_time_t(std::chrono::time_point_cast<std::chrono::seconds>(t));
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char out[32];
  std::strftime(out, sizeof out, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return out;
}

json::object fileJson(const spi::FileEntry& f) {
  return json::object{{"name", f.name}, {"size", f.size}, {"modified", iso(f.modified)}};
}

net::ProxyPage jsonPage(int status, const json::value& v) {
  net::ProxyPage page;
  page.status = status;
  page.content_type = "application/json";
  page.body = json::serialize(v) + "\n";
  return page;
}

// RFC 6266 / 8187: the name as typed, percent-encoded, plus an ASCII fallback.
std::string contentDisposition(std::string_view name) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string ascii, encoded;
  for (unsigned char c : name) {
    const bool plain = std::isalnum(c) || c == '.' || c == '-' || c == '_';
    ascii += plain || c == ' ' ? static_cast<char>(c) : '_';
    if (plain) {
      encoded += static_cast<char>(c);
    } else {
      encoded += '%';
      encoded += kHex[c >> 4];
      encoded += kHex[c & 15];
    }
  }
  return "attachment; filename=\"" + ascii + "\"; filename*=UTF-8''" + encoded;
}

}  // namespace

Result<std::uint64_t> ServerApp::admitFileRequest(const net::ProxyTarget& target, const SessionId& session,
                                                  const net::ProxyAppRequest& request) {
  if (request.method != "POST" || request.path != "/upload") {
    return invalidArgument("only uploads (POST kasm/files/upload?name=...) carry a body");
  }
  KASM_ASSIGN_OR_RETURN(auto policy, manager_->fileTransferPolicy(session, target.user));
  if (!policy.uploads) {
    return permissionDenied("uploads are turned off for your group (allow_uploads); ask an administrator");
  }
  if (request.content_length && static_cast<std::int64_t>(*request.content_length) > policy.limit_bytes) {
    return resourceExhausted("the file is larger than the upload limit of " +
                             std::to_string(policy.limit_bytes / (1024 * 1024)) + " MB");
  }
  return static_cast<std::uint64_t>(policy.limit_bytes);
}

Result<net::ProxyPage> ServerApp::serveFileRequest(const net::ProxyTarget& target, const SessionId& session,
                                                   const net::ProxyAppRequest& request) {
  const UserId& user = target.user;
  if (request.method == "GET" && (request.path.empty() || request.path == "/")) {
    KASM_ASSIGN_OR_RETURN(auto policy, manager_->fileTransferPolicy(session, user));
    json::array files;
    if (policy.downloads) {
      KASM_ASSIGN_OR_RETURN(auto listed, manager_->listDownloads(session, user));
      for (const auto& f : listed) files.push_back(fileJson(f));
    }
    return jsonPage(200, json::object{{"uploads", policy.uploads},
                                      {"downloads", policy.downloads},
                                      {"limit_bytes", policy.limit_bytes},
                                      {"upload_dir", "~/Uploads"},
                                      {"download_dir", "~/Downloads"},
                                      {"files", std::move(files)}});
  }
  if (request.method == "POST" && request.path == "/upload") {
    KASM_ASSIGN_OR_RETURN(std::string name, queryParameter(request.query, "name"));
    if (name.empty()) return invalidArgument("name the file: kasm/files/upload?name=<file name>");
    KASM_ASSIGN_OR_RETURN(auto stored, manager_->uploadFile(session, user, name, request.body));
    logLine("file_uploaded", "session " + session.str() + " by " + user.str() + ": " + std::to_string(stored.size) +
                                 " bytes to ~/Uploads");
    json::object out = fileJson(stored);
    out["path"] = "~/Uploads/" + stored.name;
    return jsonPage(201, out);
  }
  constexpr std::string_view kDownload = "/download/";
  if (request.method == "GET" && request.path.starts_with(kDownload)) {
    KASM_ASSIGN_OR_RETURN(std::string name, net::percentDecode(request.path.substr(kDownload.size())));
    KASM_ASSIGN_OR_RETURN(std::string data, manager_->downloadFile(session, user, name));
    logLine("file_downloaded", "session " + session.str() + " by " + user.str() + ": " + std::to_string(data.size()) +
                                   " bytes from ~/Downloads");
    net::ProxyPage page;
    page.content_type = "application/octet-stream";
    page.body = std::move(data);
    page.headers.emplace_back("Content-Disposition", contentDisposition(name));
    page.headers.emplace_back("X-Content-Type-Options", "nosniff");
    return page;
  }
  return notFound("no file endpoint " + request.method + " kasm/files" + request.path);
}

Result<net::ProxySocketHandlers> ServerApp::openAudio(const net::ProxyAuthRequest& request,
                                                      const net::ProxyTarget& target,
                                                      std::shared_ptr<net::ProxySocket> socket) {
  auto stop = std::make_shared<std::atomic<bool>>(false);
  {
    std::lock_guard lock(audio_mutex_);
    if (stopping_.load()) return unavailable("the server is stopping");
    audio_streams_.insert(stop);
  }
  const SessionId session = request.session;
  const UserId user = target.user;
  // The stream blocks for as long as someone listens: a thread of its own, not the pool's.
  std::thread([this, session, user, socket, stop] {
    socket->send(json::serialize(
        json::object{{"format", "s16le"}, {"rate", Manager::kAudioRate}, {"channels", Manager::kAudioChannels}}));
    // About half a second of sound waiting for a slow client: later pieces are dropped, so the
    // sound stays live instead of falling behind.
    constexpr std::size_t kMaxQueued = Manager::kAudioRate * Manager::kAudioChannels;
    auto streamed = manager_->streamAudio(session, user, [&](std::string_view pcm) {
      if (stop->load()) return false;
      if (socket->queuedBytes() > kMaxQueued) return true;
      return socket->sendBinary(std::string(pcm));
    });
    if (!streamed.ok() && !stop->load()) {
      std::string message = streamed.error().message();
      if (message.find("parec") != std::string::npos && message.find("not found") != std::string::npos) {
        message = "this desktop image has no sound (PulseAudio and parec, images/CONTRACT.md)";
      }
      socket->send(json::serialize(json::object{{"error", message}}));
    }
    socket->close();
    std::lock_guard lock(audio_mutex_);
    audio_streams_.erase(stop);
    audio_done_.notify_all();
  }).detach();
  net::ProxySocketHandlers h;
  h.on_close = [stop] { stop->store(true); };
  return h;
}

Result<net::ProxySocketHandlers> ServerApp::openMicrophone(const net::ProxyAuthRequest& request,
                                                           const net::ProxyTarget& target,
                                                           std::shared_ptr<net::ProxySocket> socket) {
  // What the browser sent and the thread has not written yet: at most a second of sound, so a
  // stalled desktop never grows it.
  struct Feed {
    std::mutex mutex;
    std::condition_variable ready;
    std::deque<std::string> chunks;
    std::size_t bytes = 0;
  };
  constexpr std::size_t kMaxQueued = Manager::kMicrophoneRate * 2;
  auto feed = std::make_shared<Feed>();
  auto stop = std::make_shared<std::atomic<bool>>(false);
  {
    std::lock_guard lock(audio_mutex_);
    if (stopping_.load()) return unavailable("the server is stopping");
    audio_streams_.insert(stop);
  }
  std::thread([this, session = request.session, user = target.user, socket, stop, feed] {
    auto input = manager_->openMicrophone(session, user);
    if (!input.ok()) {
      socket->send(json::serialize(json::object{{"error", input.error().message()}}));
    } else {
      socket->send(json::serialize(
          json::object{{"ready", true}, {"format", "s16le"}, {"rate", Manager::kMicrophoneRate}, {"channels", 1}}));
      while (!stop->load()) {
        std::string chunk;
        {
          std::unique_lock lock(feed->mutex);
          feed->ready.wait_for(lock, std::chrono::milliseconds(100), [&] { return !feed->chunks.empty(); });
          if (feed->chunks.empty()) continue;
          chunk = std::move(feed->chunks.front());
          feed->chunks.pop_front();
          feed->bytes -= chunk.size();
        }
        if (auto written = (*input)->write(chunk); !written.ok()) {
          std::string message = written.error().message();
          socket->send(
              json::serialize(json::object{{"error", "the desktop stopped taking the microphone (" + message +
                                                         "); does its image have PulseAudio (images/CONTRACT.md)?"}}));
          break;
        }
      }
      input->reset();  // Ends the desktop's side.
    }
    socket->close();
    std::lock_guard lock(audio_mutex_);
    audio_streams_.erase(stop);
    audio_done_.notify_all();
  }).detach();
  net::ProxySocketHandlers h;
  h.on_binary = [feed](std::string_view pcm) {
    if (pcm.size() % 2 != 0) return;  // Not whole samples: dropped.
    std::lock_guard lock(feed->mutex);
    if (feed->bytes + pcm.size() > kMaxQueued) return;  // The desktop lags: drop, stay live.
    feed->bytes += pcm.size();
    feed->chunks.emplace_back(pcm);
    feed->ready.notify_one();
  };
  h.on_close = [stop, feed] {
    stop->store(true);
    feed->ready.notify_one();
  };
  return h;
}

void ServerApp::stopAudio() {
  std::unique_lock lock(audio_mutex_);
  for (const auto& s : audio_streams_) s->store(true);
  // A stream notices at its next piece of sound (every ~20 ms while the desktop plays or is silent).
  audio_done_.wait_for(lock, std::chrono::seconds(5), [this] { return audio_streams_.empty(); });
}

}  // namespace kasm::server
