#!/usr/bin/env bash
# piauth's main job, offline: build piauth, start the bundled emulator on a
# free loopback port, log in through it with no browser (this script plays the
# browser and follows the authorize redirect to piauth's callback server), pool
# three keys of which the first is rate-limited, stream a chat that rotates
# past it, then show the pool and the status. Everything happens in a temporary
# agent dir with the OS keyring off, and is removed at the end.
#
# Needs: Go 1.26 and curl. Usage: scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
emu_pid=""
cleanup() {
  [ -n "$emu_pid" ] && kill "$emu_pid" 2>/dev/null && wait "$emu_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }
show() { printf '$ %s\n' "$*" >&2; "$@"; }

step "build"
go build -o "$work/bin/piauth" ./cmd/piauth
export PATH="$work/bin:$PATH"
export PI_CODING_AGENT_DIR="$work/agent" PIAUTH_KEYRING=off
# piauth's own state and config (ledger, learned version) also stay in the temp dir.
export PIAUTH_STATE_DIR="$work/state" XDG_CONFIG_HOME="$work/config"

step "start the emulator"
piauth emulator --quiet >"$work/emulator.out" 2>"$work/emulator.err" &
emu_pid=$!
for _ in $(seq 100); do
  grep -q '^listening on ' "$work/emulator.out" 2>/dev/null && break
  sleep 0.05
done
url=$(sed -n '1s/^listening on //p' "$work/emulator.out")
[ -n "$url" ] || { cat "$work/emulator.err" >&2; echo "emulator did not start" >&2; exit 1; }
echo "emulator: $url" >&2
export PIAUTH_AUTHORIZE_URL="$url/oauth/authorize" PIAUTH_TOKEN_URL="$url/v1/oauth/token" PIAUTH_BASE_URL="$url"

# Fake pool tokens, built at run time. The emulator accepts any sk-ant-oat
# token it did not mint, and answers 429 to one containing "ratelimited".
pad=$(printf 'x%.0s' $(seq 24))
limited="sk-ant-oat01-demo-ratelimited-$pad-0001"
third="sk-ant-oat01-demo-spare-$pad-0003"

step "pool key 1 (rate-limited at the emulator)"
printf '%s\n' "$limited" | show piauth key add --stdin --label limited

step "log in without a browser and pool the account as key 2"
piauth login --no-browser --port 0 --add-to-pool --label demo </dev/null 2>"$work/login.err" &
login_pid=$!
auth_url=""
for _ in $(seq 100); do
  auth_url=$(grep -o "$url/oauth/authorize[^ ]*" "$work/login.err" || true)
  [ -n "$auth_url" ] && break
  sleep 0.05
done
[ -n "$auth_url" ] || { cat "$work/login.err" >&2; exit 1; }
echo "browser: following $url/oauth/authorize?… to the callback" >&2
curl -sS -L -o /dev/null "$auth_url"
wait "$login_pid"
grep -v "$url/oauth/authorize" "$work/login.err" >&2 || true

step "pool key 3"
printf '%s\n' "$third" | show piauth key add --stdin --label spare

step "the pool"
show piauth key list

step "stream a chat: key 1 is rate-limited, piauth rotates at once"
show piauth chat --stream "Say hello to the demo"

step "again: the cooling key is skipped, no second 429"
show piauth chat --stream "And once more"

step "pool and status after the rotation"
show piauth key list
show piauth status

requests=$(curl -sS "$url/_emulator/stats")
echo "emulator counted: $requests" >&2
step "done (temporary agent dir removed)"
