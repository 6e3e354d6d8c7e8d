#!/usr/bin/env bash
# Runs every test of piauth: gofmt check, go vet, and go test -race over all
# packages, inside a private D-Bus session with a real, freshly unlocked
# gnome-keyring Secret Service (so keyring tests hit the real thing, never the
# user's own keyring). Heavy tests run sized for CI (-short); pass extra
# `go test` flags as arguments, e.g. scripts/test.sh -run Keyring ./pkg/keystore.
#
# On a fresh machine it first installs the system packages the tests need
# when one is missing: with apt-get on Debian/Ubuntu (as root, or through
# sudo), with brew on macOS. When it cannot, it stops and prints the one
# command to run.
set -euo pipefail
self=$(realpath "$0")
cd "$(dirname "$self")/.."

# Go from the official tarball is often not on PATH in CI shells.
command -v go >/dev/null || export PATH="$PATH:/usr/local/go/bin"

# Recorded real Messages streams (shared/ beside the checkout).
export PIAUTH_TRANSCRIPTS="${PIAUTH_TRANSCRIPTS:-$(cd .. && pwd)/shared/transcripts}"

# stop MESSAGE COMMAND: the set-up cannot go on; COMMAND is the one to run.
stop() {
  printf 'scripts/test.sh: %s\nrun:\n  %s\n' "$1" "$2" >&2
  exit 1
}

# install_test_deps: installs the packages providing the tools the tests run
# (the Secret Service, D-Bus, secret-tool, zsh and fish for the completion
# tests, groff to check the man page, redis-server for the shared-store tests,
# which start their own throwaway servers on free loopback ports, systemd for
# the proxy service's real systemctl --user tests) when one is missing.
install_test_deps() {
  local tools=(dbus-run-session dbus-send gnome-keyring-daemon secret-tool zsh fish groff redis-server)
  [ "$(uname -s)" = Linux ] && tools+=(systemctl)
  local missing=() t
  for t in "${tools[@]}"; do
    command -v "$t" >/dev/null || missing+=("$t")
  done
  if ! command -v go >/dev/null; then
    local arch
    case $(uname -m) in aarch64 | arm64) arch=arm64 ;; *) arch=amd64 ;; esac
    if [ "$(uname -s)" = Darwin ]; then
      stop "go is not installed (piauth needs Go 1.26 or later)" "brew install go && scripts/test.sh"
    fi
    stop "go is not installed (piauth needs Go 1.26 or later: https://go.dev/dl/)" \
      "curl -fsSL https://go.dev/dl/go1.26.0.linux-$arch.tar.gz | sudo tar -C /usr/local -xz && scripts/test.sh"
  fi
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "scripts/test.sh: missing ${missing[*]}; installing the packages" >&2

  case $(uname -s) in
    Linux)
      command -v apt-get >/dev/null ||
        stop "missing ${missing[*]} and no apt-get to install them" \
          "install gnome-keyring, dbus, libsecret's secret-tool, zsh, fish, redis-server and systemd with your package manager"
      local pkgs=(gnome-keyring dbus dbus-x11 libsecret-tools zsh fish groff-base redis-server systemd) sudo=()
      # dbus-send and dbus-run-session are their own packages since Debian 12.
      apt-cache show dbus-bin >/dev/null 2>&1 && pkgs+=(dbus-bin dbus-daemon)
      if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null ||
          stop "missing ${missing[*]}; installing needs root" "su -c 'apt-get update && apt-get install -y ${pkgs[*]}' && scripts/test.sh"
        sudo=(sudo)
      fi
      DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${pkgs[@]}" >/dev/null ||
        stop "apt-get could not install ${pkgs[*]}" "sudo apt-get update && sudo apt-get install -y ${pkgs[*]} && scripts/test.sh"
      ;;
    Darwin)
      command -v brew >/dev/null ||
        stop "missing ${missing[*]} and Homebrew is not installed" \
          '/bin/bash -c "$(curl -fsSL https://raw.githubusercontent.com/Homebrew/install/HEAD/install.sh)" && scripts/test.sh'
      brew install dbus libsecret zsh fish groff redis ||
        stop "brew could not install dbus libsecret zsh fish groff redis" "brew install dbus libsecret zsh fish groff redis && scripts/test.sh"
      ;;
  esac
  for t in "${tools[@]}"; do
    command -v "$t" >/dev/null && continue
    # Homebrew has no gnome-keyring: the keyring tests need a Linux Secret
    # Service, so on macOS they run in a container.
    stop "$t is still missing after installing the packages; the keyring tests need a Linux Secret Service (gnome-keyring)" \
      "docker run --rm -v \"\$PWD\":/src -w /src golang:1.26 scripts/test.sh"
  done
}

if [ -z "${PIAUTH_TEST_IN_DBUS:-}" ]; then
  install_test_deps
fi

# shellcheck source=scripts/keyring-session.sh
. scripts/keyring-session.sh
piauth_keyring_session "$self" "$@"

unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then echo "gofmt needed: $unformatted" >&2; exit 1; fi
go vet ./...
if [ $# -eq 0 ]; then set -- -short ./...; fi
go test -race -count=1 -timeout 15m "$@"
