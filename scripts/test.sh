#!/usr/bin/env bash
# Runs every test of piauth: gofmt check, go vet, and go test -race over all
# packages, inside a private D-Bus session with a real, freshly unlocked
# gnome-keyring Secret Service (so keyring tests hit the real thing, never the
# user's own keyring). Heavy tests run sized for CI (-short); pass extra
# `go test` flags as arguments, e.g. scripts/test.sh -run Keyring ./pkg/keystore.
set -euo pipefail
cd "$(dirname "$0")/.."

# Recorded real Messages streams (shared/ beside the checkout).
export PIAUTH_TRANSCRIPTS="${PIAUTH_TRANSCRIPTS:-$(cd .. && pwd)/shared/transcripts}"

if [ -z "${PIAUTH_TEST_IN_DBUS:-}" ]; then
  for tool in dbus-run-session gnome-keyring-daemon secret-tool; do
    command -v "$tool" >/dev/null || { echo "scripts/test.sh: $tool is missing (apt-get install gnome-keyring dbus dbus-x11 libsecret-tools)" >&2; exit 1; }
  done
  PIAUTH_TEST_IN_DBUS=1 exec dbus-run-session -- "$0" "$@"
fi

# A throwaway keyring directory: tests never see or touch a real login keyring.
keyring_home=$(mktemp -d)
trap 'rm -rf "$keyring_home"' EXIT
eval "$(printf 'piauth-test' | XDG_DATA_HOME="$keyring_home" gnome-keyring-daemon --unlock --components=secrets)"
export GNOME_KEYRING_CONTROL
# Wait until the Secret Service answers on the bus.
for _ in $(seq 50); do
  secret-tool search --all service piauth-ci-probe >/dev/null 2>&1 && break
  sleep 0.1
done

unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then echo "gofmt needed: $unformatted" >&2; exit 1; fi
go vet ./...
if [ $# -eq 0 ]; then set -- -short ./...; fi
go test -race -count=1 -timeout 15m "$@"
