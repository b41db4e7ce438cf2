# An OpenSSH server on a free loopback port for the SSH gateway tests (tests/ssh). Sourced by
# scripts/lib-services.sh. Needs root (sshd switches to the logged-in user) and openssh-server.
#
# start_sshd exports:
#   KASM_TEST_SSHD_ADDR      127.0.0.1:PORT
#   KASM_TEST_SSHD_USER      a local user made for this run (home in the service directory),
#                            removed by stop_sshd, so runs side by side never share a password
#   KASM_TEST_SSHD_PASSWORD  its random password
#   KASM_TEST_SSHD_KEY       path of an OpenSSH private key the server accepts for that user
#   KASM_TEST_SSHD_HOST_KEY  path of the server's host public key (tests compute its fingerprint)
#   KASM_TEST_SSHD_KBDINT_ADDR  127.0.0.1:PORT of a second server (same user and host key) that
#                            accepts the password only by keyboard-interactive, through PAM
#
# The server reads only its own configuration (no Include of /etc/ssh), its own host key, and
# authorized keys from its own directory, so nothing of the machine's sshd setup is used or changed.
# PAM is off on the main server: sshd then checks passwords against /etc/shadow itself, which is all
# the tests need; the keyboard-interactive one needs PAM (Debian's common-auth, pam_unix).

KASM_FIXED_SERVICES+=(sshd)

# Succeeds when something on 127.0.0.1:$1 answers with an SSH banner.
sshd_answers() {
  timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1 && head -c 4 <&3" 2>/dev/null | grep -q '^SSH-'
}

start_sshd() {
  if [ ! -x /usr/sbin/sshd ] || ! command -v ssh-keygen >/dev/null 2>&1; then
    echo "sshd not installed (apt-get install openssh-server)" >&2
    return 1
  fi
  if [ "$(id -u)" -ne 0 ]; then
    echo "start_sshd needs root (sshd logs users in)" >&2
    return 1
  fi
  local dir="$KASM_SERVICES_DIR/sshd" user port kbd_port password
  user="kasm-ssh-$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  rm -rf "$dir"
  # The directory holds private keys: only root may enter. The authorized keys live in a
  # subdirectory that sshd reads as the user, reached through the 0711 parent.
  mkdir -p "$dir/authorized"
  chmod 711 "$dir"
  chmod 755 "$dir/authorized"

  ssh-keygen -q -t ed25519 -N '' -C kasm-test-host -f "$dir/host_ed25519_key" >/dev/null || return 1
  ssh-keygen -q -t ed25519 -N '' -C kasm-test-user -f "$dir/user_ed25519_key" >/dev/null || return 1

  useradd --home-dir "$dir/home" --create-home --shell /bin/bash --comment "kasm SSH gateway tests" "$user" ||
    return 1
  KASM_SSHD_USER="$user"
  password="kasm-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  echo "$user:$password" | chpasswd || return 1
  install -m 644 "$dir/user_ed25519_key.pub" "$dir/authorized/$user"

  # sshd's privilege separation directory; Debian's package creates it only when its own service
  # starts.
  mkdir -p /run/sshd
  chmod 755 /run/sshd

  port=$(free_port)
  sshd_write_config "$dir" "$user" "$port" main "UsePAM no
PasswordAuthentication yes
KbdInteractiveAuthentication no
PubkeyAuthentication yes"
  if ! KASM_SSHD_PID=$(sshd_launch "$dir" main "$port"); then
    KASM_SSHD_PID=""
    stop_sshd
    return 1
  fi
  export KASM_TEST_SSHD_ADDR="127.0.0.1:$port"
  export KASM_TEST_SSHD_USER="$user"
  export KASM_TEST_SSHD_PASSWORD="$password"
  export KASM_TEST_SSHD_KEY="$dir/user_ed25519_key"
  export KASM_TEST_SSHD_HOST_KEY="$dir/host_ed25519_key.pub"
  echo "services: sshd on 127.0.0.1:$port (user $user)"

  # A second server that takes the same password only by keyboard-interactive (PAM asks for it), as
  # many hardened servers do. Optional: without it only the keyboard-interactive test skips.
  kbd_port=$(free_port)
  sshd_write_config "$dir" "$user" "$kbd_port" kbdint "UsePAM yes
PasswordAuthentication no
KbdInteractiveAuthentication yes
PubkeyAuthentication no"
  if KASM_SSHD_KBDINT_PID=$(sshd_launch "$dir" kbdint "$kbd_port"); then
    export KASM_TEST_SSHD_KBDINT_ADDR="127.0.0.1:$kbd_port"
    echo "services: sshd (keyboard-interactive only) on 127.0.0.1:$kbd_port"
  else
    KASM_SSHD_KBDINT_PID=""
    echo "services: no keyboard-interactive sshd; that test will skip" >&2
  fi
  return 0
}

# Writes $1/sshd-$4.config for user $2 on port $3; $5 holds the authentication lines.
sshd_write_config() {
  local dir=$1 user=$2 port=$3 name=$4 auth=$5
  cat >"$dir/sshd-$name.config" <<EOF_SSHD
# Written by scripts/services/sshd.sh for the kasm tests.
ListenAddress 127.0.0.1
Port $port
HostKey $dir/host_ed25519_key
PidFile $dir/sshd-$name.pid
$auth
PermitEmptyPasswords no
PermitRootLogin no
AllowUsers $user
AuthorizedKeysFile $dir/authorized/%u
# The authorized keys sit under /tmp, whose mode StrictModes refuses.
StrictModes no
X11Forwarding no
AllowTcpForwarding no
AllowAgentForwarding no
PermitTunnel no
PrintMotd no
PrintLastLog no
LoginGraceTime 30
MaxStartups 50
LogLevel VERBOSE
EOF_SSHD
}

# Starts sshd with $1/sshd-$2.config in the background and prints its pid once port $3 answers;
# fails (printing its log) when it does not.
sshd_launch() {
  local dir=$1 name=$2 port=$3 pid i
  /usr/sbin/sshd -t -f "$dir/sshd-$name.config" 2>"$dir/sshd-$name.log" || { cat "$dir/sshd-$name.log" >&2; return 1; }
  /usr/sbin/sshd -D -f "$dir/sshd-$name.config" -E "$dir/sshd-$name.log" </dev/null >/dev/null 2>&1 &
  pid=$!
  for i in $(seq 1 60); do
    if sshd_answers "$port"; then
      echo "$pid"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.25
  done
  echo "sshd ($name) did not answer on 127.0.0.1:$port; its log:" >&2
  tail -n 30 "$dir/sshd-$name.log" >&2 2>/dev/null || true
  kill "$pid" 2>/dev/null || true
  return 1
}

# Stops the servers started above and removes their user (the home goes with the service
# directory). Sessions still open end with their own processes, which userdel -f does not wait for.
stop_sshd() {
  local pid
  for pid in "${KASM_SSHD_PID:-}" "${KASM_SSHD_KBDINT_PID:-}"; do
    [ -n "$pid" ] || continue
    kill "$pid" 2>/dev/null || true
    # Not a child of this shell when started in $(...): wait for it by polling instead.
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  done
  KASM_SSHD_PID=""
  KASM_SSHD_KBDINT_PID=""
  if [ -n "${KASM_SSHD_USER:-}" ]; then
    userdel -f "$KASM_SSHD_USER" >/dev/null 2>&1 || true
    KASM_SSHD_USER=""
  fi
  unset KASM_TEST_SSHD_ADDR KASM_TEST_SSHD_USER KASM_TEST_SSHD_PASSWORD KASM_TEST_SSHD_KEY KASM_TEST_SSHD_HOST_KEY \
    KASM_TEST_SSHD_KBDINT_ADDR
}
