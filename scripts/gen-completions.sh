#!/usr/bin/env bash
# Regenerates the committed shell completions under completions/ from the
# command tree of the current sources (`piauth completion SHELL`). Run it after
# adding or changing a command or flag; a test fails while they are stale.
set -euo pipefail
cd "$(dirname "$0")/.."

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/piauth" ./cmd/piauth

mkdir -p completions
for pair in bash:piauth.bash zsh:_piauth fish:piauth.fish; do
  shell=${pair%%:*} file=completions/${pair#*:}
  "$tmp/piauth" completion "$shell" >"$tmp/out"
  if cmp -s "$tmp/out" "$file"; then
    echo "unchanged $file"
  else
    mv "$tmp/out" "$file"
    echo "wrote $file"
  fi
done
