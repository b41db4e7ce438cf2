// ustar writing and reading (POSIX.1-2001 pax, with GNU long names accepted on reading).

#include "agent/tar.hpp"

#include <algorithm>
#include <array>
#include <cstring>

namespace kasm::agent::detail {

namespace {

constexpr std::size_t kBlock = 512;

using Header = std::array<char, kBlock>;

// Fixed offsets of the ustar header fields.
struct Field {
  std::size_t offset;
  std::size_t size;
};
constexpr Field kName{0, 100}, kMode{100, 8}, kUid{108, 8}, kGid{116, 8}, kSize{124, 12}, kMtime{136, 12},
    kChecksum{148, 8}, kType{156, 1}, kMagic{257, 6}, kVersion{263, 2}, kPrefix{345, 155};

void putOctal(Header& h, Field f, std::uint64_t value) {
  // Digits, right-aligned, then NUL: the classic form every reader accepts.
  std::string digits;
  do {
    digits.insert(digits.begin(), static_cast<char>('0' + (value & 7)));
    value >>= 3;
  } while (value != 0);
  if (digits.size() > f.size - 1) digits = std::string(f.size - 1, '7');  // Callers keep values in range.
  std::string padded(f.size - 1 - digits.size(), '0');
  padded += digits;
  std::memcpy(h.data() + f.offset, padded.data(), padded.size());
  h[f.offset + f.size - 1] = '\0';
}

void putText(Header& h, Field f, std::string_view text) {
  std::memcpy(h.data() + f.offset, text.data(), std::min(text.size(), f.size));
}

std::uint32_t checksumOf(const Header& h) {
  std::uint32_t sum = 0;
  for (std::size_t i = 0; i < kBlock; ++i) {
    const bool in_field = i >= kChecksum.offset && i < kChecksum.offset + kChecksum.size;
    sum += in_field ? static_cast<std::uint32_t>(' ') : static_cast<unsigned char>(h[i]);
  }
  return sum;
}

void appendPadded(std::string& out, std::string_view data) {
  out.append(data);
  out.append((kBlock - data.size() % kBlock) % kBlock, '\0');
}

// One PAX record: "<length> path=<value>\n", where the length counts itself.
std::string paxRecord(std::string_view key, std::string_view value) {
  const std::size_t body = 1 + key.size() + 1 + value.size() + 1;
  std::size_t length = body + 1;
  while (std::to_string(length).size() + body != length) ++length;
  return std::to_string(length) + " " + std::string(key) + "=" + std::string(value) + "\n";
}

void appendEntry(std::string& out, std::string_view name, char type, std::uint32_t mode, std::string_view data,
                 const TarOwner& owner) {
  if (name.size() >= kName.size) {
    // Too long for the name field: a PAX header before it carries the whole path.
    const std::string record = paxRecord("path", name);
    Header pax{};
    putText(pax, kName, "././@PaxHeader");
    putOctal(pax, kMode, 0644);
    putOctal(pax, kUid, 0);
    putOctal(pax, kGid, 0);
    putOctal(pax, kSize, record.size());
    putOctal(pax, kMtime, static_cast<std::uint64_t>(std::max<std::int64_t>(owner.mtime, 0)));
    pax[kType.offset] = 'x';
    putText(pax, kMagic, std::string_view("ustar\0", 6));
    putText(pax, kVersion, "00");
    putOctal(pax, kChecksum, checksumOf(pax));
    out.append(pax.data(), kBlock);
    appendPadded(out, record);
    name = name.substr(0, kName.size - 1);  // Readers without PAX get a truncated name.
  }
  Header h{};
  putText(h, kName, name);
  putOctal(h, kMode, mode);
  putOctal(h, kUid, owner.uid);
  putOctal(h, kGid, owner.gid);
  putOctal(h, kSize, data.size());
  putOctal(h, kMtime, static_cast<std::uint64_t>(std::max<std::int64_t>(owner.mtime, 0)));
  h[kType.offset] = type;
  putText(h, kMagic, std::string_view("ustar\0", 6));
  putText(h, kVersion, "00");
  // The checksum field: six octal digits, NUL, space.
  std::uint32_t sum = checksumOf(h);
  for (int i = 5; i >= 0; --i) {
    h[kChecksum.offset + static_cast<std::size_t>(i)] = static_cast<char>('0' + (sum & 7));
    sum >>= 3;
  }
  h[kChecksum.offset + 6] = '\0';
  h[kChecksum.offset + 7] = ' ';
  out.append(h.data(), kBlock);
  appendPadded(out, data);
}

// An octal field (spaces and NULs around the digits allowed) or GNU's base-256 form.
bool readNumber(std::string_view field, std::uint64_t& out) {
  out = 0;
  if (!field.empty() && (static_cast<unsigned char>(field[0]) & 0x80) != 0) {
    if (static_cast<unsigned char>(field[0]) != 0x80) return false;  // Negative or too wide.
    for (std::size_t i = 1; i < field.size(); ++i) {
      if (out >> 55) return false;
      out = (out << 8) | static_cast<unsigned char>(field[i]);
    }
    return true;
  }
  std::size_t i = 0;
  while (i < field.size() && field[i] == ' ') ++i;
  bool any = false;
  for (; i < field.size() && field[i] >= '0' && field[i] <= '7'; ++i) {
    if (out >> 60) return false;
    out = (out << 3) | static_cast<std::uint64_t>(field[i] - '0');
    any = true;
  }
  for (; i < field.size(); ++i) {
    if (field[i] != ' ' && field[i] != '\0') return false;
  }
  return any;
}

std::string_view text(std::string_view block, Field f) {
  std::string_view v = block.substr(f.offset, f.size);
  return v.substr(0, v.find('\0'));
}

// The "path" of a PAX extended header's records; empty when it has none.
Result<std::string> paxPath(std::string_view records) {
  std::string path;
  while (!records.empty()) {
    const auto space = records.find(' ');
    if (space == std::string_view::npos || space == 0 || space > 20)
      return invalidArgument("tar: malformed PAX record");
    std::uint64_t length = 0;
    for (char c : records.substr(0, space)) {
      if (c < '0' || c > '9') return invalidArgument("tar: malformed PAX record length");
      length = length * 10 + static_cast<std::uint64_t>(c - '0');
      if (length > records.size()) return invalidArgument("tar: a PAX record runs past its header");
    }
    if (length <= space + 1) return invalidArgument("tar: malformed PAX record");
    std::string_view record = records.substr(space + 1, length - space - 1);
    if (record.empty() || record.back() != '\n') return invalidArgument("tar: a PAX record does not end its line");
    record.remove_suffix(1);
    if (record.starts_with("path=")) path = std::string(record.substr(5));
    records.remove_prefix(length);
  }
  return path;
}

}  // namespace

std::string tarFileInDirectory(std::string_view dir, std::string_view name, std::string_view data,
                               const TarOwner& owner) {
  std::string out;
  out.reserve(4 * kBlock + data.size() + kBlock);
  const std::string dir_name = std::string(dir) + "/";
  appendEntry(out, dir_name, '5', 0755, {}, owner);
  appendEntry(out, dir_name + std::string(name), '0', 0644, data, owner);
  out.append(2 * kBlock, '\0');  // End of archive.
  return out;
}

Result<TarEntry> readFirstTarEntry(std::string_view archive) {
  std::string long_name;
  for (std::size_t pos = 0;;) {
    if (archive.size() - pos < kBlock) {
      return archive.size() == pos ? notFound("tar: the archive is empty")
                                   : invalidArgument("tar: the archive ends inside a header");
    }
    std::string_view block = archive.substr(pos, kBlock);
    if (block.find_first_not_of('\0') == std::string_view::npos) return notFound("tar: the archive is empty");
    std::uint64_t stored = 0, size = 0, mode = 0, uid = 0, gid = 0, mtime = 0;
    if (!readNumber(block.substr(kChecksum.offset, kChecksum.size), stored)) {
      return invalidArgument("tar: a header has no checksum");
    }
    Header h{};
    std::memcpy(h.data(), block.data(), kBlock);
    if (stored != checksumOf(h)) return invalidArgument("tar: a header's checksum does not match");
    if (!readNumber(block.substr(kSize.offset, kSize.size), size))
      return invalidArgument("tar: a header's size is malformed");
    pos += kBlock;
    if (size > archive.size() - pos) return invalidArgument("tar: an entry runs past the end of the archive");
    const std::string_view data = archive.substr(pos, static_cast<std::size_t>(size));
    pos += static_cast<std::size_t>((size + kBlock - 1) / kBlock * kBlock);
    pos = std::min(pos, archive.size());
    const char type = block[kType.offset];
    if (type == 'x') {
      KASM_ASSIGN_OR_RETURN(std::string path, paxPath(data));
      if (!path.empty()) long_name = std::move(path);
      continue;
    }
    if (type == 'L') {
      long_name = std::string(data.substr(0, data.find('\0')));
      continue;
    }
    if (type == 'g') continue;  // Global PAX records: nothing we use.
    // Numeric fields we report; a malformed one is a malformed archive.
    if (!readNumber(block.substr(kMode.offset, kMode.size), mode) ||
        !readNumber(block.substr(kUid.offset, kUid.size), uid) ||
        !readNumber(block.substr(kGid.offset, kGid.size), gid) ||
        !readNumber(block.substr(kMtime.offset, kMtime.size), mtime)) {
      return invalidArgument("tar: a header's mode, owner or time is malformed");
    }
    TarEntry e;
    if (!long_name.empty()) {
      e.name = std::move(long_name);
    } else {
      const std::string_view prefix = text(block, kPrefix);
      const bool ustar = text(block, kMagic).starts_with("ustar");
      e.name = (ustar && !prefix.empty() ? std::string(prefix) + "/" : std::string()) + std::string(text(block, kName));
    }
    e.type = type == '\0' ? '0' : type;
    e.mode = static_cast<std::uint32_t>(mode & 07777);
    e.uid = static_cast<std::uint32_t>(std::min<std::uint64_t>(uid, UINT32_MAX));
    e.gid = static_cast<std::uint32_t>(std::min<std::uint64_t>(gid, UINT32_MAX));
    e.mtime = static_cast<std::int64_t>(std::min<std::uint64_t>(mtime, INT64_MAX));
    if (e.type == '0' || e.type == '7') e.data = std::string(data);
    return e;
  }
}

}  // namespace kasm::agent::detail
