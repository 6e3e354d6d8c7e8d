# Sourced by scripts/test.sh and scripts/reliability.sh: re-runs the calling
# script inside a private D-Bus session whose Secret Service is a freshly
# unlocked, throwaway gnome-keyring, so tests use the real thing and never the
# user's own keyring.
#
# The keyring's data dir (XDG_DATA_HOME) is set BEFORE the session starts, so
# that a daemon D-Bus itself activates (when a client asks for the Secret
# Service before ours has registered) uses the same empty dir instead of a
# locked ~/.local/share/keyrings/login.keyring.

piauth_keyring_session() {
  local self=$1
  shift
  if [ -z "${PIAUTH_TEST_IN_DBUS:-}" ]; then
    local tool
    for tool in dbus-run-session dbus-send gnome-keyring-daemon secret-tool; do
      command -v "$tool" >/dev/null || {
        echo "$self: $tool is missing (apt-get install gnome-keyring dbus dbus-x11 libsecret-tools)" >&2
        exit 1
      }
    done
    PIAUTH_TEST_KEYRING_HOME=$(mktemp -d)
    export PIAUTH_TEST_KEYRING_HOME XDG_DATA_HOME="$PIAUTH_TEST_KEYRING_HOME" PIAUTH_TEST_IN_DBUS=1
    exec dbus-run-session -- "$self" "$@"
  fi

  # In the foreground (as a child of this shell) so that it ends with the run.
  printf 'piauth-test' | gnome-keyring-daemon --foreground --unlock --components=secrets >/dev/null 2>&1 &
  PIAUTH_TEST_KEYRING_PID=$!
  trap 'kill "$PIAUTH_TEST_KEYRING_PID" 2>/dev/null; rm -rf "$PIAUTH_TEST_KEYRING_HOME"' EXIT
  # Wait until the Secret Service owns its bus name. NameHasOwner asks the bus
  # only, so unlike a Secret Service call it cannot activate a second daemon.
  local _
  for _ in $(seq 100); do
    dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
      org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null |
      grep -q 'boolean true' && return 0
    sleep 0.05
  done
  echo "$self: the Secret Service did not start" >&2
  exit 1
}
