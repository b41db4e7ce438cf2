// Files in and out of session containers through the engine's archive API, and live output of a
// command (audio), so that images need no service of their own for either. Whatever comes out of a container is the
// session's content: only what the image's user could read itself is handed over.

#include <algorithm>

#include "agent/tar.hpp"
#include "kasm/agent/local_agent.hpp"
#include "model/validation.hpp"

namespace kasm::agent {

namespace {

// images/CONTRACT.md: the desktop's user.
constexpr std::uint32_t kImageUid = 1000;
constexpr std::uint32_t kImageGid = 1000;
// What a directory listing holds at most.
constexpr std::size_t kMaxListed = 1000;

bool readableByImageUser(const detail::TarEntry& e) {
  if (e.uid == kImageUid) return (e.mode & 0400) != 0;
  if (e.gid == kImageGid) return (e.mode & 0040) != 0;
  return (e.mode & 0004) != 0;
}

// Lists the regular files (not symbolic links, not hidden) of "$1" as the image's user: "size
// mtime<TAB>name<NUL>" each. A missing directory lists nothing.
constexpr const char* kListScript =
    "cd -- \"$1\" 2>/dev/null || exit 0\n"
    "for f in *; do\n"
    "  if [ -f \"$f\" ] && [ ! -L \"$f\" ]; then printf '%s\\t%s\\0' \"$(stat -c '%s %Y' -- \"$f\")\" \"$f\"; fi\n"
    "done\n";

}  // namespace

Result<void> LocalAgent::execStream(const SessionId& session, const spi::ExecRequest& request,
                                    const std::function<bool(std::string_view)>& on_stdout) {
  KASM_ASSIGN_OR_RETURN(auto info, ownContainer(session));
  return runtime_.execStream(info.id, request, on_stdout);
}

Result<std::unique_ptr<spi::ExecInput>> LocalAgent::execWithInput(const SessionId& session,
                                                                  const spi::ExecRequest& request) {
  KASM_ASSIGN_OR_RETURN(auto info, ownContainer(session));
  return runtime_.execWithInput(info.id, request);
}

Result<void> LocalAgent::putFile(const SessionId& session, const std::string& dir, const std::string& name,
                                 std::string_view data) {
  KASM_RETURN_IF_ERROR(kasm::detail::requireAbsolutePath(dir, "directory"));
  KASM_RETURN_IF_ERROR(kasm::detail::requireFileName(name, "file name"));
  const auto slash = dir.find_last_of('/');
  const std::string leaf = dir.substr(slash + 1);
  if (leaf.empty()) return invalidArgument("files are not written to /");
  const std::string parent = slash == 0 ? "/" : dir.substr(0, slash);
  KASM_ASSIGN_OR_RETURN(auto info, ownContainer(session));
  // The archive holds the directory itself, so the engine replaces whatever stands at its place
  // that is not a directory (a symbolic link planted there included) instead of writing through it.
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(clock_.now().time_since_epoch()).count();
  const std::string tar = detail::tarFileInDirectory(leaf, name, data, {kImageUid, kImageGid, now});
  auto put = runtime_.putArchive(info.id, parent, tar);
  if (!put.ok()) return put.error().withContext("session " + session.str());
  return {};
}

Result<std::string> LocalAgent::getFile(const SessionId& session, const std::string& path, std::int64_t max_bytes) {
  KASM_RETURN_IF_ERROR(kasm::detail::requireAbsolutePath(path, "path"));
  if (max_bytes < 0) return invalidArgument("max_bytes must not be negative");
  KASM_ASSIGN_OR_RETURN(auto info, ownContainer(session));
  // The archive adds a header or two and pads to 512 bytes.
  const auto cap = static_cast<std::size_t>(max_bytes) + 8 * 1024;
  auto archive = runtime_.getArchive(info.id, path, cap);
  if (!archive.ok()) {
    if (archive.error().code() == ErrorCode::kResourceExhausted) {
      return resourceExhausted(path + " is larger than the limit of " + std::to_string(max_bytes) + " bytes");
    }
    return archive.error().withContext("session " + session.str());
  }
  KASM_ASSIGN_OR_RETURN(auto entry, detail::readFirstTarEntry(*archive));
  if (entry.type != '0' && entry.type != '7') return permissionDenied(path + " is not a regular file");
  if (!readableByImageUser(entry)) return permissionDenied(path + " is not readable by the session's user");
  if (static_cast<std::int64_t>(entry.data.size()) > max_bytes) {
    return resourceExhausted(path + " is larger than the limit of " + std::to_string(max_bytes) + " bytes");
  }
  return std::move(entry.data);
}

Result<std::vector<spi::FileEntry>> LocalAgent::listFiles(const SessionId& session, const std::string& dir) {
  KASM_RETURN_IF_ERROR(kasm::detail::requireAbsolutePath(dir, "directory"));
  spi::ExecRequest request;
  request.command = {"sh", "-c", kListScript, "sh", dir};
  request.user = std::to_string(kImageUid);
  KASM_ASSIGN_OR_RETURN(auto out, exec(session, request));
  if (out.exit_code != 0) {
    return internalError("listing " + dir + " of session " + session.str() + " failed: " + out.output.substr(0, 200));
  }
  std::vector<spi::FileEntry> files;
  std::string_view rest = out.output;
  while (!rest.empty() && files.size() < kMaxListed) {
    const auto end = rest.find('\0');
    if (end == std::string_view::npos) break;  // Cut off by the output cap.
    std::string_view line = rest.substr(0, end);
    rest.remove_prefix(end + 1);
    const auto tab = line.find('\t');
    const auto space = line.find(' ');
    if (tab == std::string_view::npos || space == std::string_view::npos || space > tab) continue;
    spi::FileEntry e;
    e.name = std::string(line.substr(tab + 1));
    std::int64_t size = 0, mtime = 0;
    try {
      size = std::stoll(std::string(line.substr(0, space)));
      mtime = std::stoll(std::string(line.substr(space + 1, tab - space - 1)));
    } catch (...) {
      continue;
    }
    if (!kasm::detail::requireFileName(e.name, "name").ok()) continue;  // Nothing a user could name.
    e.size = size;
    e.modified = TimePoint(std::chrono::seconds(mtime));
    files.push_back(std::move(e));
  }
  std::sort(files.begin(), files.end(), [](const auto& a, const auto& b) { return a.modified > b.modified; });
  return files;
}

}  // namespace kasm::agent
