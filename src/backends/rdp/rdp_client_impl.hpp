#pragma once

// Internal to rdp_client.cpp and rdp_clipboard.cpp: the state behind RdpClient, with FreeRDP's
// headers (kept out of rdp_client.hpp so that the RFB side compiles without them).

#include <freerdp/client/cliprdr.h>
#include <freerdp/client/disp.h>
#include <freerdp/freerdp.h>

#include <atomic>
#include <mutex>
#include <string>
#include <vector>

#include "backends/rdp/rdp_client.hpp"

namespace kasm::rdp::detail {

struct RdpClient::Impl {
  Impl(const spi::GatewayRequest& r, spi::GatewayPins& p, RdpEvents& e) : request(r), pins(p), events(e) {}

  const spi::GatewayRequest& request;
  spi::GatewayPins& pins;
  RdpEvents& events;
  rdpContext* context = nullptr;

  // Why the connection failed or ended, as the user should read it; set by the callbacks that know
  // (a refused certificate, a logon error) before FreeRDP's generic error is consulted.
  std::string failure;
  std::atomic<bool> logon_confirmed{false};  // A logon notification or the session's clipboard said so.
  bool painted = false;
  bool connected = false;

  std::uint16_t buttons = 0;  // The last RFB button mask, to turn masks into press/release.
  std::uint16_t pointer_x = 0, pointer_y = 0;

  // Clipboard (cliprdr). Its callbacks run on the channel's own thread: what they learn is put in
  // the inbox under `mu`, and `inbox_event` wakes the serve() thread, which hands it on.
  CliprdrClientContext* cliprdr = nullptr;
  std::atomic<bool> clipboard_ready{false};  // The server's clipboard monitor is ready.
  std::atomic<bool> requested_server_text{false};
  std::mutex mu;
  std::string local_text_utf16;         // The viewer's text, offered to the server (under mu).
  std::vector<std::string> inbox_text;  // The server's texts for the viewer, Latin-1 (under mu).
  void* inbox_event = nullptr;          // A WinPR event handle.

  // Display Control (disp, a dynamic channel: its callbacks run on drdynvc's thread).
  DispClientContext* disp = nullptr;
  std::atomic<bool> disp_ready{false};
};

// The FreeRDP context with a way back to the Impl.
struct KasmRdpContext {
  rdpClientContext common;
  RdpClient::Impl* impl;
};

inline RdpClient::Impl& implOf(rdpContext* context) {
  return *reinterpret_cast<KasmRdpContext*>(context)->impl;
}

// rdp_clipboard.cpp
void attachClipboard(RdpClient::Impl& impl, CliprdrClientContext* cliprdr);
void offerClipboardText(RdpClient::Impl& impl);

}  // namespace kasm::rdp::detail
