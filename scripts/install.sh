#!/usr/bin/env bash
# Installs piauth and its shell completions under PREFIX (default ~/.local):
#   PREFIX/bin/piauth
#   PREFIX/share/bash-completion/completions/piauth
#   PREFIX/share/zsh/site-functions/_piauth
#   PREFIX/share/fish/vendor_completions.d/piauth.fish
#   PREFIX/share/man/man1/piauth.1
# Idempotent: files already up to date are left alone. Usage:
#   scripts/install.sh [PREFIX]
# `piauth --version` shows the module version and commit the go command
# records; PIAUTH_VERSION stamps another version instead. PIAUTH_BIN installs
# an already built binary instead of building.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -gt 1 ]; then
  echo "usage: scripts/install.sh [PREFIX]" >&2
  exit 2
fi
prefix=${1:-$HOME/.local}
case $prefix in
  /*) ;;
  *) prefix="$PWD/$prefix" ;;
esac

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ -n "${PIAUTH_BIN:-}" ]; then
  cp "$PIAUTH_BIN" "$tmp/piauth"
else
  command -v go >/dev/null || { echo "install.sh: go is not installed (https://go.dev/dl/)" >&2; exit 1; }
  ldflags="-s -w"
  if [ -n "${PIAUTH_VERSION:-}" ]; then ldflags="$ldflags -X main.version=$PIAUTH_VERSION"; fi
  # -buildvcs=auto (go's default, which GOFLAGS may have turned off) records
  # the commit for --version.
  CGO_ENABLED=0 go build -trimpath -buildvcs=auto -ldflags "$ldflags" -o "$tmp/piauth" ./cmd/piauth
fi
version=$("$tmp/piauth" --version)
version=${version#piauth version }

# put SRC DEST MODE: installs SRC as DEST unless DEST already has that content.
put() {
  if [ -f "$2" ] && cmp -s "$1" "$2"; then
    echo "unchanged $2"
    return
  fi
  mkdir -p "$(dirname "$2")"
  # Copy next to the target, then rename: a running piauth is never half-written.
  cp "$1" "$2.tmp.$$"
  chmod "$3" "$2.tmp.$$"
  mv -f "$2.tmp.$$" "$2"
  echo "installed $2"
}

put "$tmp/piauth" "$prefix/bin/piauth" 0755
"$tmp/piauth" completion bash >"$tmp/piauth.bash"
"$tmp/piauth" completion zsh >"$tmp/_piauth"
"$tmp/piauth" completion fish >"$tmp/piauth.fish"
put "$tmp/piauth.bash" "$prefix/share/bash-completion/completions/piauth" 0644
put "$tmp/_piauth" "$prefix/share/zsh/site-functions/_piauth" 0644
put "$tmp/piauth.fish" "$prefix/share/fish/vendor_completions.d/piauth.fish" 0644
"$tmp/piauth" man >"$tmp/piauth.1"
put "$tmp/piauth.1" "$prefix/share/man/man1/piauth.1" 0644

echo "piauth $version installed in $prefix"
case ":$PATH:" in
  *":$prefix/bin:"*) ;;
  *) echo "note: $prefix/bin is not on your PATH; add it to use piauth" ;;
esac
