// File transfer in and out of sessions: who may, how much, and where (Kasm's allow_uploads and
// allow_downloads group settings). The bytes go through the session's agent.

#include "manager/manager_impl.hpp"
#include "model/validation.hpp"

namespace kasm {

namespace {

struct Transfer {
  Session session;
  GroupSettings settings;  // The owner's.
  FileTransferPolicy policy;
  std::shared_ptr<spi::AgentLink> link;
};

Result<Transfer> transferOn(Manager& manager, Manager::Impl& im, const SessionId& id, const UserId& requester) {
  KASM_ASSIGN_OR_RETURN(auto s, im.repo.get<Session>(id.str()));
  if (s.value.user_id != requester) {
    return permissionDenied("only the owner of session " + id.str() + " transfers files in and out of it");
  }
  if (s.value.server_id) {
    return failedPrecondition("session " + id.str() + " is on a fixed server; files move only in container sessions");
  }
  if (s.value.state != SessionState::kRunning) {
    return failedPrecondition("session " + id.str() + " is " + std::string(enumName(s.value.state)) +
                              "; files move only while it runs");
  }
  KASM_ASSIGN_OR_RETURN(auto settings, manager.effectiveSettings(requester));
  KASM_ASSIGN_OR_RETURN(auto ws, im.repo.get<Workspace>(s.value.workspace_id.str()));
  Transfer t{s.value, settings, {}, nullptr};
  t.policy.uploads = settings.allow_uploads;
  t.policy.downloads = settings.allow_downloads;
  t.policy.limit_bytes = std::int64_t{settings.file_transfer_limit_mb} * 1024 * 1024;
  std::string home = ws.value.persistent_profile_target;
  while (home.size() > 1 && home.back() == '/') home.pop_back();
  t.policy.upload_dir = home + "/Uploads";
  t.policy.download_dir = home + "/Downloads";
  t.link = s.value.agent_id ? im.linkFor(*s.value.agent_id) : nullptr;
  return t;
}

Result<std::shared_ptr<spi::AgentLink>> connected(const Transfer& t) {
  if (!t.link) return unavailable("the agent of session " + t.session.id.str() + " is not connected; try again soon");
  return t.link;
}

std::string megabytes(std::int64_t bytes) {
  return std::to_string(bytes / (1024 * 1024)) + " MB";
}

}  // namespace

Result<FileTransferPolicy> Manager::fileTransferPolicy(const SessionId& session, const UserId& requester) {
  KASM_ASSIGN_OR_RETURN(auto t, transferOn(*this, *impl_, session, requester));
  return t.policy;
}

Result<spi::FileEntry> Manager::uploadFile(const SessionId& session, const UserId& requester, const std::string& name,
                                           std::string_view data) {
  KASM_RETURN_IF_ERROR(detail::requireFileName(name, "the file name"));
  KASM_ASSIGN_OR_RETURN(auto t, transferOn(*this, *impl_, session, requester));
  if (!t.policy.uploads) {
    return permissionDenied("uploads are turned off for your group (allow_uploads); ask an administrator");
  }
  if (static_cast<std::int64_t>(data.size()) > t.policy.limit_bytes) {
    return resourceExhausted("the file is larger than the upload limit of " + megabytes(t.policy.limit_bytes));
  }
  KASM_ASSIGN_OR_RETURN(auto link, connected(t));
  KASM_RETURN_IF_ERROR(link->putFile(session, t.policy.upload_dir, name, data));
  (void)recordActivity(session);
  return spi::FileEntry{name, static_cast<std::int64_t>(data.size()), impl_->clock.now()};
}

Result<std::vector<spi::FileEntry>> Manager::listDownloads(const SessionId& session, const UserId& requester) {
  KASM_ASSIGN_OR_RETURN(auto t, transferOn(*this, *impl_, session, requester));
  if (!t.policy.downloads) {
    return permissionDenied("downloads are turned off for your group (allow_downloads); ask an administrator");
  }
  KASM_ASSIGN_OR_RETURN(auto link, connected(t));
  return link->listFiles(session, t.policy.download_dir);
}

Result<std::string> Manager::downloadFile(const SessionId& session, const UserId& requester, const std::string& name) {
  KASM_RETURN_IF_ERROR(detail::requireFileName(name, "the file name"));
  KASM_ASSIGN_OR_RETURN(auto t, transferOn(*this, *impl_, session, requester));
  if (!t.policy.downloads) {
    return permissionDenied("downloads are turned off for your group (allow_downloads); ask an administrator");
  }
  KASM_ASSIGN_OR_RETURN(auto link, connected(t));
  auto data = link->getFile(session, t.policy.download_dir + "/" + name, t.policy.limit_bytes);
  if (!data.ok() && data.error().code() == ErrorCode::kResourceExhausted) {
    return resourceExhausted(name + " is larger than the download limit of " + megabytes(t.policy.limit_bytes));
  }
  if (!data.ok() && data.error().code() == ErrorCode::kNotFound) {
    return notFound(name + " is not in ~/Downloads of the session");
  }
  if (data.ok()) (void)recordActivity(session);
  return data;
}

Result<void> Manager::streamAudio(const SessionId& session, const UserId& requester,
                                  const std::function<bool(std::string_view)>& on_pcm) {
  KASM_ASSIGN_OR_RETURN(auto t, transferOn(*this, *impl_, session, requester));
  if (!t.settings.allow_audio) {
    return permissionDenied("sound is turned off for your group (allow_audio); ask an administrator");
  }
  KASM_ASSIGN_OR_RETURN(auto link, connected(t));
  // The monitor of the desktop's output, read as its user (images/CONTRACT.md).
  spi::ExecRequest parec;
  parec.command = {"parec",
                   "--server=unix:/tmp/kasm-pulse/native",
                   "--device=kasm_output.monitor",
                   "--format=s16le",
                   "--rate=" + std::to_string(kAudioRate),
                   "--channels=" + std::to_string(kAudioChannels),
                   "--latency-msec=20",
                   "--raw"};
  parec.user = "1000";
  // Whole frames only: a piece may end inside one.
  constexpr std::size_t kFrame = 2 * kAudioChannels;
  std::string partial;
  return link->execStream(session, parec, [&](std::string_view data) {
    partial.append(data);
    const std::size_t whole = partial.size() - partial.size() % kFrame;
    if (whole == 0) return true;
    const bool more = on_pcm(std::string_view(partial).substr(0, whole));
    partial.erase(0, whole);
    return more;
  });
}

Result<std::unique_ptr<spi::ExecInput>> Manager::openMicrophone(const SessionId& session, const UserId& requester) {
  KASM_ASSIGN_OR_RETURN(auto t, transferOn(*this, *impl_, session, requester));
  if (!t.settings.allow_microphone) {
    return permissionDenied("the microphone is turned off for your group (allow_microphone); ask an administrator");
  }
  KASM_ASSIGN_OR_RETURN(auto link, connected(t));
  // Played into the sink whose monitor is the desktop's default source (images/CONTRACT.md).
  spi::ExecRequest pacat;
  pacat.command = {"pacat",
                   "--playback",
                   "--server=unix:/tmp/kasm-pulse/native",
                   "--device=kasm_mic_sink",
                   "--format=s16le",
                   "--rate=" + std::to_string(kMicrophoneRate),
                   "--channels=1",
                   "--latency-msec=40",
                   "--raw"};
  pacat.user = "1000";
  return link->execWithInput(session, pacat);
}

}  // namespace kasm
