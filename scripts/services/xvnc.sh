# A fixed VNC server for the server tests: TigerVNC's Xvnc on loopback with a VNC password and an
# xterm under openbox, as an administrator's VNC host would be. Sourced by scripts/lib-services.sh.
# Exports KASM_TEST_VNC_ADDR (127.0.0.1:PORT) and KASM_TEST_VNC_PASSWORD.

KASM_FIXED_SERVICES+=(xvnc)

start_xvnc() {
  command -v Xvnc >/dev/null 2>&1 || { echo "Xvnc not installed (apt-get install tigervnc-standalone-server)" >&2; return 1; }
  command -v vncpasswd >/dev/null 2>&1 || { echo "vncpasswd not installed (apt-get install tigervnc-tools)" >&2; return 1; }
  local dir port display pw i
  dir="$KASM_SERVICES_DIR/xvnc"
  mkdir -p "$dir"
  chmod 700 "$dir"
  port=$(free_port)
  # A display number nobody uses: X sockets live in /tmp/.X11-unix.
  for display in $(seq 40 99); do
    [ -e "/tmp/.X11-unix/X$display" ] || [ -e "/tmp/.X$display-lock" ] || break
  done
  pw="vnc$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  pw="${pw:0:8}"  # VNC Authentication uses at most 8 characters.
  printf '%s\n' "$pw" | vncpasswd -f > "$dir/passwd"
  chmod 600 "$dir/passwd"
  Xvnc ":$display" -geometry 1024x768 -depth 24 -rfbport "$port" -localhost -interface 127.0.0.1 \
    -SecurityTypes VncAuth -rfbauth "$dir/passwd" -AlwaysShared -AcceptSetDesktopSize \
    >"$dir/xvnc.log" 2>&1 &
  KASM_XVNC_PID=$!
  for i in $(seq 1 40); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      DISPLAY=":$display" openbox --startup xterm >"$dir/openbox.log" 2>&1 &
      KASM_XVNC_WM_PID=$!
      export KASM_TEST_VNC_ADDR="127.0.0.1:$port"
      export KASM_TEST_VNC_PASSWORD="$pw"
      echo "services: Xvnc (fixed VNC server) on 127.0.0.1:$port, display :$display"
      return 0
    fi
    kill -0 "$KASM_XVNC_PID" 2>/dev/null || break
    sleep 0.25
  done
  cat "$dir/xvnc.log" >&2 2>/dev/null || true
  stop_xvnc
  return 1
}

stop_xvnc() {
  local p
  for p in "${KASM_XVNC_WM_PID:-}" "${KASM_XVNC_PID:-}"; do
    if [ -n "$p" ]; then
      kill "$p" 2>/dev/null || true
      wait "$p" 2>/dev/null || true
    fi
  done
  KASM_XVNC_WM_PID=""
  KASM_XVNC_PID=""
}
