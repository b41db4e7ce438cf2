// The pure parts of the rdp backend: RFB client messages, pixel formats, the keyboard map and the
// clipboard's text conversions. No server needed.

#include <gtest/gtest.h>

#include "backends/rdp/clipboard_text.hpp"
#include "backends/rdp/keyboard_map.hpp"
#include "backends/rdp/rfb_protocol.hpp"

namespace kasm::rdp::detail {
namespace {

std::vector<std::uint8_t> bytes(std::initializer_list<int> v) {
  std::vector<std::uint8_t> out;
  for (int b : v) out.push_back(static_cast<std::uint8_t>(b));
  return out;
}

TEST(RfbProtocol, MessagesSplitAcrossReadsAreParsedOnce) {
  // SetEncodings [16, -308], then a KeyEvent 'a' down, fed one byte at a time.
  const auto stream = bytes({2, 0, 0, 2, 0, 0, 0, 16, 0xFF, 0xFF, 0xFE, 0xCC, 4, 1, 0, 0, 0, 0, 0, 'a'});
  ClientMsgReader reader;
  std::vector<ClientMsg> seen;
  for (std::uint8_t b : stream) {
    reader.append({&b, 1});
    while (auto m = reader.next()) seen.push_back(*m);
  }
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].type, ClientMsgType::kSetEncodings);
  EXPECT_EQ(seen[0].encodings.encodings, (std::vector<std::int32_t>{16, -308}));
  EXPECT_EQ(seen[1].type, ClientMsgType::kKey);
  EXPECT_TRUE(seen[1].key.down);
  EXPECT_EQ(seen[1].key.keysym, 'a');
  EXPECT_TRUE(reader.error().empty());
}

TEST(RfbProtocol, QemuExtendedKeyCarriesTheScancode) {
  ClientMsgReader reader;
  const auto m = bytes({255, 0, 0, 1, 0, 0, 0xFF, 0x52, 0, 0, 0, 0xC8});  // Up arrow, RFB keycode 0xC8.
  reader.append(m);
  auto msg = reader.next();
  ASSERT_TRUE(msg);
  EXPECT_EQ(msg->type, ClientMsgType::kKey);
  EXPECT_EQ(msg->key.keysym, 0xFF52u);
  auto sc = scancodeFromQemuKeycode(msg->key.scancode);
  ASSERT_TRUE(sc);
  EXPECT_EQ(sc->code, 0x48);
  EXPECT_TRUE(sc->extended);
}

TEST(RfbProtocol, ExtendedPointerOnlyWhenAnnounced) {
  const auto m = bytes({5, 0x81, 0, 10, 0, 20, 0x01});  // Marker + left, back button in the extra byte.
  ClientMsgReader plain;
  plain.append(m);
  auto first = plain.next();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->pointer.mask, 0x81);  // Six bytes: the seventh starts the next message...
  EXPECT_FALSE(plain.next());            // ...which is type 1, unknown.
  EXPECT_FALSE(plain.error().empty());

  ClientMsgReader extended;
  extended.setExtendedPointer(true);
  extended.append(m);
  auto msg = extended.next();
  ASSERT_TRUE(msg);
  EXPECT_EQ(msg->pointer.mask, 0x01 | 0x80);  // Left and back (bit 7).
  EXPECT_EQ(msg->pointer.x, 10);
  EXPECT_EQ(msg->pointer.y, 20);
  EXPECT_TRUE(extended.error().empty());
}

TEST(RfbProtocol, SetDesktopSizeAndCutText) {
  ClientMsgReader reader;
  reader.append(bytes({251, 0, 3, 0x20, 2, 0x58, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0x20, 2, 0x58, 0, 0, 0, 0}));
  reader.append(bytes({6, 0, 0, 0, 0, 0, 0, 2, 'h', 0xE9}));
  auto size = reader.next();
  ASSERT_TRUE(size);
  EXPECT_EQ(size->type, ClientMsgType::kSetDesktopSize);
  EXPECT_EQ(size->desktop_size.w, 800);
  EXPECT_EQ(size->desktop_size.h, 600);
  ASSERT_EQ(size->desktop_size.screens.size(), 1u);
  auto cut = reader.next();
  ASSERT_TRUE(cut);
  EXPECT_EQ(cut->cut_text.latin1, std::string("h\xE9"));
}

TEST(RfbProtocol, OversizedCutTextAndUnknownTypesEndTheStream) {
  ClientMsgReader big;
  big.append(bytes({6, 0, 0, 0, 0x7F, 0, 0, 0}));
  EXPECT_FALSE(big.next());
  EXPECT_NE(big.error().find("clipboard"), std::string::npos);
  ClientMsgReader unknown;
  unknown.append(bytes({77}));
  EXPECT_FALSE(unknown.next());
  EXPECT_NE(unknown.error().find("77"), std::string::npos);
}

TEST(RfbProtocol, PixelConversion) {
  const std::uint8_t rgbx[8] = {0x11, 0x22, 0x33, 0, 0xFF, 0x80, 0x00, 0};
  std::string native;
  appendRow(native, PixelFormat::native(), rgbx, 2);
  EXPECT_EQ(native, std::string(reinterpret_cast<const char*>(rgbx), 8));

  PixelFormat bgr_be = PixelFormat::native();
  bgr_be.big_endian = true;
  bgr_be.red_shift = 16;
  bgr_be.blue_shift = 0;
  std::string out;
  appendRow(out, bgr_be, rgbx, 1);
  EXPECT_EQ(out, std::string("\x00\x11\x22\x33", 4));

  PixelFormat rgb565{16, 16, false, true, 31, 63, 31, 11, 5, 0};
  EXPECT_EQ(rgb565.pack(0xFF, 0xFF, 0xFF), 0xFFFFu);
  EXPECT_EQ(rgb565.pack(0xFF, 0, 0), 0xF800u);
}

TEST(RfbProtocol, FailureAndServerInit) {
  EXPECT_EQ(securityFailure("no"), std::string("\x00\x00\x00\x00\x02no", 7));
  const std::string init = serverInit(1024, 768, "d");
  ASSERT_EQ(init.size(), 2u + 2 + 16 + 4 + 1);
  EXPECT_EQ(static_cast<std::uint8_t>(init[0]), 4);
  EXPECT_EQ(init[4], 32);  // bpp
  EXPECT_EQ(init[14], 0);  // red shift
  EXPECT_EQ(init[15], 8);
  EXPECT_EQ(init[16], 16);
}

TEST(KeyboardMap, FunctionKeysCharactersAndLayouts) {
  auto ret = scancodeForFunctionKey(0xFF0D);
  ASSERT_TRUE(ret);
  EXPECT_EQ(ret->code, 0x1C);
  EXPECT_FALSE(ret->extended);
  auto del = scancodeForFunctionKey(0xFFFF);
  ASSERT_TRUE(del);
  EXPECT_TRUE(del->extended);
  EXPECT_FALSE(scancodeForFunctionKey('a'));

  EXPECT_EQ(codepointForKeysym('a'), U'a');
  EXPECT_EQ(codepointForKeysym(0xE9), U'\u00E9');
  EXPECT_EQ(codepointForKeysym(0x010020AC), U'\u20AC');
  EXPECT_FALSE(codepointForKeysym(0xFF0D));

  auto upper_a = usKeyForAscii(U'A');
  ASSERT_TRUE(upper_a);
  EXPECT_EQ(upper_a->scancode.code, 0x1E);
  EXPECT_TRUE(upper_a->shift);
  auto one = usKeyForAscii(U'1');
  ASSERT_TRUE(one);
  EXPECT_EQ(one->scancode.code, 0x02);
  EXPECT_FALSE(one->shift);
  auto tilde = usKeyForAscii(U'~');
  ASSERT_TRUE(tilde);
  EXPECT_EQ(tilde->scancode.code, 0x29);
  EXPECT_TRUE(tilde->shift);
  EXPECT_FALSE(usKeyForAscii(U'\u00E9'));

  EXPECT_EQ(keyboardLayoutId("de-DE"), 0x407u);
  EXPECT_EQ(keyboardLayoutId("en_us"), 0x409u);
  EXPECT_FALSE(keyboardLayoutId("xx-yy"));
  EXPECT_FALSE(scancodeFromQemuKeycode(0));
  auto a = scancodeFromQemuKeycode(0x1E);
  ASSERT_TRUE(a);
  EXPECT_FALSE(a->extended);
}

TEST(ClipboardText, Latin1ToUtf16AndBack) {
  const std::string utf16 = latin1ToUtf16le("a\nb\xE9");
  EXPECT_EQ(utf16, std::string("a\0\r\0\n\0b\0\xE9\0\0\0", 12));
  EXPECT_EQ(utf16leToLatin1(utf16), "a\nb\xE9");
  // A CRLF already there is kept as one line end.
  EXPECT_EQ(utf16leToLatin1(latin1ToUtf16le("x\r\ny")), "x\ny");
}

TEST(ClipboardText, CharactersBeyondLatin1BecomeQuestionMarks) {
  // "€" (U+20AC), then U+1F600 as a surrogate pair, then "z", an odd trailing byte.
  const std::string utf16("\xAC\x20\x3D\xD8\x00\xDE\x7A\x00\x01", 9);
  EXPECT_EQ(utf16leToLatin1(utf16), "??z");
  EXPECT_EQ(utf16leToLatin1(std::string("q\0\0\0r\0", 6)), "q");  // Stops at the NUL.
}

}  // namespace
}  // namespace kasm::rdp::detail
