#!/usr/bin/env bash
# Runs every test of piauth: gofmt check, go vet, and go test -race over all
# packages, inside a private D-Bus session with a real, freshly unlocked
# gnome-keyring Secret Service (so keyring tests hit the real thing, never the
# user's own keyring). Heavy tests run sized for CI (-short); pass extra
# `go test` flags as arguments, e.g. scripts/test.sh -run Keyring ./pkg/keystore.
set -euo pipefail
self=$(realpath "$0")
cd "$(dirname "$self")/.."

# Recorded real Messages streams (shared/ beside the checkout).
export PIAUTH_TRANSCRIPTS="${PIAUTH_TRANSCRIPTS:-$(cd .. && pwd)/shared/transcripts}"

# shellcheck source=scripts/keyring-session.sh
. scripts/keyring-session.sh
piauth_keyring_session "$self" "$@"

unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then echo "gofmt needed: $unformatted" >&2; exit 1; fi
go vet ./...
if [ $# -eq 0 ]; then set -- -short ./...; fi
go test -race -count=1 -timeout 15m "$@"
