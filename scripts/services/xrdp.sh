# xrdp (with xorgxrdp, openbox and an xterm) on a free loopback port, for the "rdp" gateway tests and
# bench_rdp. Sourced by scripts/lib-services.sh, which provides free_port and $KASM_SERVICES_DIR.
#
# xrdp 0.9.21 reads the sesman port from /etc/xrdp/sesman.ini whatever -c says, and writes its pid
# files and sockets under /run/xrdp. So that a private sesman port works and nothing of a system
# xrdp is touched, both daemons run in a mount namespace of their own (unshare -m) where a private
# copy of the configuration is bind-mounted over /etc/xrdp and a private directory over /run/xrdp.
# Sessions (Xorg, openbox, xterm) are started by that sesman, so they see the same view.
#
# Exports KASM_TEST_XRDP_ADDR (127.0.0.1:PORT), KASM_TEST_XRDP_USER and KASM_TEST_XRDP_PASSWORD.
# Needs root (a test user is created, mounts are made) and the packages xrdp, xorgxrdp, openbox,
# xterm and xfonts-base.

KASM_FIXED_SERVICES+=(xrdp)

start_xrdp() {
  local missing="" cmd
  for cmd in xrdp xrdp-sesman openbox xterm unshare useradd chpasswd; do
    command -v "$cmd" >/dev/null 2>&1 || missing="$missing $cmd"
  done
  [ -e /usr/lib/xorg/modules/drivers/xrdpdev_drv.so ] || missing="$missing xorgxrdp"
  if [ -n "$missing" ]; then
    echo "xrdp: missing:$missing (apt-get install xrdp xorgxrdp openbox xterm xfonts-base)" >&2
    return 1
  fi
  if [ "$(id -u)" -ne 0 ]; then
    echo "xrdp: start_xrdp needs root (it creates a test user and a mount namespace)" >&2
    return 1
  fi

  local dir="$KASM_SERVICES_DIR/xrdp" port sesman_port user password i
  port=$(free_port)
  sesman_port=$(free_port)
  while [ "$sesman_port" = "$port" ]; do sesman_port=$(free_port); done
  rm -rf "$dir"
  mkdir -p "$dir/etc" "$dir/run/sockdir" "$dir/log"
  # xrdp and sesman create their sockets here as root; the session (as the user) connects to them.
  chmod 755 "$dir/run"
  chmod 3777 "$dir/run/sockdir"
  cp -a /etc/xrdp/. "$dir/etc/"

  # xrdp: loopback only, logs in $dir/log.
  # Only the first port= (in [Globals]); the session sections' port=-1 means "ask sesman".
  sed -i -e "0,/^port=/s|^port=.*|port=tcp://127.0.0.1:$port|" \
    -e "s|^LogFile=.*|LogFile=$dir/log/xrdp.log|" \
    -e "s|^EnableSyslog=.*|EnableSyslog=false|" "$dir/etc/xrdp.ini"
  # sesman: the free port, one session per connection (the benchmark opens ten at once), sessions
  # killed once disconnected, our window manager script for every user.
  sed -i -e "s|^ListenPort=.*|ListenPort=$sesman_port|" \
    -e "s|^ListenAddress=.*|ListenAddress=127.0.0.1|" \
    -e "s|^EnableUserWindowManager=.*|EnableUserWindowManager=false|" \
    -e "s|^Policy=.*|Policy=UBC|" \
    -e "s|^KillDisconnected=.*|KillDisconnected=true|" \
    -e "s|^MaxSessions=.*|MaxSessions=100|" \
    -e "s|^LogFile=xrdp-sesman.log|LogFile=$dir/log/xrdp-sesman.log|" \
    -e "s|^EnableSyslog=.*|EnableSyslog=false|" "$dir/etc/sesman.ini"
  # openbox starts the xterm itself: started beside openbox, xterm sometimes stalls 5 s. The xterm
  # selects to and pastes from CLIPBOARD (the selection xrdp's clipboard bridge serves), so that the
  # clipboard tests can copy and paste with the mouse.
  cat >"$dir/etc/startwm.sh" <<'EOF_WM'
#!/bin/sh
exec openbox --startup "xterm -xrm 'XTerm*selectToClipboard: true' -geometry 80x24+10+10"
EOF_WM
  chmod 755 "$dir/etc/startwm.sh"

  user="kasmrdp$(head -c 3 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  password="Rdp-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  useradd -m -s /bin/sh "$user" || return 1
  echo "$user:$password" | chpasswd || { userdel -r "$user" >/dev/null 2>&1; return 1; }
  KASM_XRDP_USER_CREATED="$user"

  # One namespace for both daemons: sesman in the background (pid in a file), then xrdp in place
  # of the shell, so that $! is xrdp itself.
  cat >"$dir/run.sh" <<EOF_RUN
#!/bin/sh
mount --bind "$dir/etc" /etc/xrdp || exit 1
mkdir -p /run/xrdp && mount --bind "$dir/run" /run/xrdp || exit 1
xrdp-sesman -n >"$dir/log/sesman.out" 2>&1 &
echo \$! >"$dir/sesman.pid"
exec xrdp -n >"$dir/log/xrdp.out" 2>&1
EOF_RUN
  chmod 755 "$dir/run.sh"
  unshare -m --propagation private "$dir/run.sh" &
  KASM_XRDP_PID=$!
  KASM_XRDP_DIR="$dir"
  # Everything xrdp and sesman start (per-connection xrdp processes, sessions) shares this mount
  # namespace, which is how stop_xrdp finds exactly what was started here.
  for i in $(seq 1 20); do
    KASM_XRDP_MNT_NS=$(readlink "/proc/$KASM_XRDP_PID/ns/mnt" 2>/dev/null)
    [ -n "$KASM_XRDP_MNT_NS" ] && [ "$KASM_XRDP_MNT_NS" != "$(readlink /proc/self/ns/mnt)" ] && break
    KASM_XRDP_MNT_NS=""
    sleep 0.05
  done

  for i in $(seq 1 80); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      export KASM_TEST_XRDP_ADDR="127.0.0.1:$port" KASM_TEST_XRDP_USER="$user" KASM_TEST_XRDP_PASSWORD="$password"
      echo "services: xrdp on 127.0.0.1:$port (sesman on $sesman_port, user $user)"
      return 0
    fi
    kill -0 "$KASM_XRDP_PID" 2>/dev/null || break
    sleep 0.25
  done
  echo "xrdp did not answer on 127.0.0.1:$port; its logs:" >&2
  tail -n 20 "$dir"/log/* >&2 2>/dev/null
  stop_xrdp
  return 1
}

stop_xrdp() {
  local pid ns signal
  if [ -n "${KASM_XRDP_MNT_NS:-}" ]; then
    for signal in TERM KILL; do
      for pid in $(ls /proc | grep -E '^[0-9]+$'); do
        ns=$(readlink "/proc/$pid/ns/mnt" 2>/dev/null) || continue
        [ "$ns" = "$KASM_XRDP_MNT_NS" ] && kill -s "$signal" "$pid" 2>/dev/null
      done
      [ "$signal" = TERM ] && sleep 0.5
    done
    KASM_XRDP_MNT_NS=""
  fi
  if [ -n "${KASM_XRDP_PID:-}" ]; then
    kill "$KASM_XRDP_PID" 2>/dev/null || true
    wait "$KASM_XRDP_PID" 2>/dev/null || true
    KASM_XRDP_PID=""
  fi
  if [ -n "${KASM_XRDP_USER_CREATED:-}" ]; then
    userdel -r "$KASM_XRDP_USER_CREATED" >/dev/null 2>&1 || true
    KASM_XRDP_USER_CREATED=""
  fi
  unset KASM_TEST_XRDP_ADDR KASM_TEST_XRDP_USER KASM_TEST_XRDP_PASSWORD
  return 0
}
