#pragma once

// The "rdp" desktop gateway backend: RDP in the browser without guacd. Each serve() connects to the
// RDP server with FreeRDP 2 and presents the desktop on the proxy's stream as an RFB 3.8 server
// (security type None), so the session proxy's VNC bridge and the browser's noVNC work unchanged.
//
// What the viewer gets: the desktop in Raw or ZRLE (only dirty regions, on request), the RDP
// pointer as a local cursor, desktop resizing both ways (SetDesktopSize through the Display
// Control channel; server resizes as ExtendedDesktopSize), keyboard (QEMU extended key events as
// scancodes, so the server's layout applies; plain keysyms as scancodes or Unicode), mouse with
// wheels and, when enabled, back/forward buttons, and text clipboard both ways.
//
// When the RDP connection cannot be made (server down, certificate refused or changed, security
// mode refused, wrong password, no session within the logon window), the RFB handshake is answered
// with a failure whose reason says why; serve() returns the same reason as its error.
//
// Certificates: "ignore" accepts any; "pin" checks the SHA-256 of the server's TLS certificate
// against GatewayPins under "rdp:host:port". Security "any" means TLS or NLA; standard RDP security
// (which has no certificate to pin) is used only when asked for as "rdp".

#include <memory>

#include "kasm/spi/desktop_gateway.hpp"

namespace kasm::rdp {

struct RdpBackendOptions {
  // Announce noVNC's ExtendedMouseButtons (back/forward as PointerEvents of 7 bytes). Off by default:
  // every hop between the viewer and the backend must then frame 7-byte PointerEvents, which the
  // session proxy's RFB filter does not yet do.
  bool extended_mouse_buttons = false;
  // The whole connection attempt (TCP, security, logon) must finish within this.
  int connect_timeout_ms = 20000;
  // Fix glibc's mmap threshold at 128 KiB for the whole process (mallopt M_MMAP_THRESHOLD), once.
  // FreeRDP sizes several zeroed buffers to the desktop; mapped fresh they cost only the pages a
  // connection touches, but after large blocks are freed glibc raises its threshold, serves them
  // from the heap and must zero them: measured, a connection then costs 32 MB instead of 8 MB.
  // Process-wide, hence an option; a process that tunes malloc itself turns it off.
  bool fix_malloc_mmap_threshold = true;
};

// A backend for protocol "rdp". Register it with kasm::spi::registerGatewayBackend("rdp", ...).
std::unique_ptr<spi::GatewayBackend> makeRdpBackend(RdpBackendOptions options = {});

}  // namespace kasm::rdp
