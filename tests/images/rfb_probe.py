#!/usr/bin/env python3
"""A small RFB (VNC) client for checking workspace images; standard library only.

  rfb_probe.py wait HOST PORT TIMEOUT [SINCE]
      Connects again and again until the server sends an "RFB 003.xxx" banner or TIMEOUT seconds
      pass. Prints the banner and the seconds since SINCE (a time.time() value; default: now).
      Exit 0 on a banner, 1 on timeout. (A published Docker port accepts connections before the
      server in the container listens, so only a banner counts as ready.)
  rfb_probe.py security HOST PORT
      Prints the security types the server offers for RFB 3.8 (1 = None, 2 = VncAuth, ...).
  rfb_probe.py screenshot HOST PORT OUT.png [X,Y]
      With security type None: fetches one full frame (Raw encoding) and writes it as a PNG.
      Prints the size and how many distinct colours it has (1 = a blank screen), and with X,Y
      the colour of that pixel as #rrggbb.
"""
import socket
import struct
import sys
import time
import zlib


def recv_exact(sock, n):
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("connection closed after %d of %d bytes" % (len(data), n))
        data += chunk
    return bytes(data)


def read_banner(host, port, timeout=2.0):
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.settimeout(timeout)
    banner = recv_exact(sock, 12)
    if not banner.startswith(b"RFB 003."):
        sock.close()
        raise ConnectionError("not an RFB banner: %r" % banner)
    return sock, banner.decode().strip()


def cmd_wait(host, port, timeout, since):
    deadline = time.time() + timeout
    last_error = "no attempt"
    while time.time() < deadline:
        try:
            sock, banner = read_banner(host, port, timeout=min(2.0, max(0.2, deadline - time.time())))
            sock.close()
            print("%s %.3f" % (banner, time.time() - since))
            return 0
        except (OSError, ConnectionError) as e:
            last_error = str(e) or type(e).__name__
            time.sleep(0.05)
    print("no RFB banner from %s:%d within %.0f s (last error: %s)" % (host, port, timeout, last_error),
          file=sys.stderr)
    return 1


def security_types(sock):
    sock.sendall(b"RFB 003.008\n")
    count = recv_exact(sock, 1)[0]
    if count == 0:
        length = struct.unpack(">I", recv_exact(sock, 4))[0]
        raise ConnectionError("server refused: %s" % recv_exact(sock, length).decode(errors="replace"))
    return list(recv_exact(sock, count))


def cmd_security(host, port):
    sock, _ = read_banner(host, port, timeout=5)
    with sock:
        types = security_types(sock)
    print(" ".join(str(t) for t in types))
    return 0


def write_png(path, width, height, rgb_rows):
    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + row for row in rgb_rows)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(png)


def cmd_screenshot(host, port, out, pixel=None):
    sock, _ = read_banner(host, port, timeout=10)
    with sock:
        types = security_types(sock)
        if 1 not in types:
            raise SystemExit("screenshot needs security type None; server offers %s" % types)
        sock.sendall(b"\x01")
        result = struct.unpack(">I", recv_exact(sock, 4))[0]
        if result != 0:
            raise SystemExit("security handshake failed (%d)" % result)
        sock.sendall(b"\x01")  # ClientInit: shared
        width, height = struct.unpack(">HH", recv_exact(sock, 4))
        recv_exact(sock, 16)  # the server's pixel format; we set our own
        name_len = struct.unpack(">I", recv_exact(sock, 4))[0]
        name = recv_exact(sock, name_len).decode(errors="replace")
        # SetPixelFormat: 32 bpp, depth 24, little endian, true colour, RGB max 255, shifts 16/8/0.
        sock.sendall(struct.pack(">BxxxBBBBHHHBBBxxx", 0, 32, 24, 0, 1, 255, 255, 255, 16, 8, 0))
        sock.sendall(struct.pack(">BxHi", 2, 1, 0))  # SetEncodings: Raw only
        sock.sendall(struct.pack(">BBHHHH", 3, 0, 0, 0, width, height))  # full update request
        frame = bytearray(width * height * 4)
        covered = 0
        while covered < width * height:
            kind = recv_exact(sock, 1)[0]
            if kind == 0:
                recv_exact(sock, 1)
                (rects,) = struct.unpack(">H", recv_exact(sock, 2))
                for _ in range(rects):
                    x, y, w, h, enc = struct.unpack(">HHHHi", recv_exact(sock, 12))
                    if enc != 0:
                        raise SystemExit("unexpected encoding %d" % enc)
                    data = recv_exact(sock, w * h * 4)
                    for row in range(h):
                        start = ((y + row) * width + x) * 4
                        frame[start:start + w * 4] = data[row * w * 4:(row + 1) * w * 4]
                    covered += w * h
            elif kind == 2:  # Bell
                pass
            elif kind == 3:  # ServerCutText
                recv_exact(sock, 3)
                (length,) = struct.unpack(">I", recv_exact(sock, 4))
                recv_exact(sock, length)
            else:
                raise SystemExit("unexpected server message %d" % kind)
    rows = []
    colours = set()
    for y in range(height):
        line = frame[y * width * 4:(y + 1) * width * 4]
        rgb = bytearray(width * 3)
        rgb[0::3] = line[2::4]
        rgb[1::3] = line[1::4]
        rgb[2::3] = line[0::4]
        rows.append(bytes(rgb))
        if y % 4 == 0:
            colours.update(struct.unpack("<%dI" % width, bytes(line))[::4])
    write_png(out, width, height, rows)
    line = "%dx%d desktop '%s', %d colours (sampled)" % (width, height, name, len(colours))
    if pixel:
        x, y = (int(v) for v in pixel.split(","))
        r, g, b = rows[y][x * 3:x * 3 + 3]
        line += ", pixel %d,%d #%02x%02x%02x" % (x, y, r, g, b)
    print(line)
    return 0


def main(argv):
    if len(argv) >= 5 and argv[1] == "wait":
        since = float(argv[5]) if len(argv) > 5 else time.time()
        return cmd_wait(argv[2], int(argv[3]), float(argv[4]), since)
    if len(argv) == 4 and argv[1] == "security":
        return cmd_security(argv[2], int(argv[3]))
    if len(argv) in (5, 6) and argv[1] == "screenshot":
        return cmd_screenshot(argv[2], int(argv[3]), argv[4], argv[5] if len(argv) == 6 else None)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
