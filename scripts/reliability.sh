#!/usr/bin/env bash
# Reproduces piauth's reliability and security figures (README "Reliability",
# issue 7) at full size and checks each against its bound.
#
#   scripts/reliability.sh            # everything (≈ 7–10 min: 6 fuzz targets × 60 s)
#   PIAUTH_FUZZTIME=10s scripts/reliability.sh   # shorter fuzzing
#
# What it runs, inside a private D-Bus session with a fresh, unlocked
# gnome-keyring (like scripts/test.sh, so the real Secret Service is used and
# the user's own keyring is never touched):
#   1. go test -v -run '^TestReliability' ./cmd/piauth/ with
#      PIAUTH_RELIABILITY_FULL=1 (64 concurrent writers, 200 SIGKILLed writers,
#      the malformed-input corpus, the token-leak flow, the 16-process refresh
#      race, the silent D-Bus hang, the loopback bind checks, `key sync` with
#      the pool file gone, token endpoint redirects, commands run with no
#      session bus). Each test logs
#      its figure as "result NAME VALUE". The same tests run at -short sizes
#      in scripts/test.sh.
#   2. go test -fuzz for FuzzDecoder, FuzzAccumulator, FuzzShape (pkg/stream),
#      FuzzParsePaste (pkg/pkce), FuzzParsePool (pkg/keystore) and FuzzStrip
#      (internal/termsafe), each for
#      $PIAUTH_FUZZTIME (default 60s) with a fresh fuzz cache in a temp dir;
#      every failing target counts as one crasher (Go writes the input under
#      the package's testdata/fuzz/).
# It prints one "result NAME VALUE" line per figure and exits non-zero when a
# figure is worse than its bound, is missing, or a test failed.
set -uo pipefail
self=$(realpath "$0")
cd "$(dirname "$self")/.."

# shellcheck source=scripts/keyring-session.sh
. scripts/keyring-session.sh
piauth_keyring_session "$self" "$@"
work=$(mktemp -d)
trap 'kill "$PIAUTH_TEST_KEYRING_PID" 2>/dev/null; rm -rf "$work" "$PIAUTH_TEST_KEYRING_HOME"' EXIT

export PIAUTH_TRANSCRIPTS="${PIAUTH_TRANSCRIPTS:-$(cd .. && pwd)/shared/transcripts}"
fuzztime="${PIAUTH_FUZZTIME:-60s}"
status=0

echo "== building" >&2
go build ./... || exit 1

echo "== process-level reliability tests (full sizes)" >&2
PIAUTH_RELIABILITY_FULL=1 go test -count=1 -timeout 30m -v -run '^TestReliability' ./cmd/piauth/ >"$work/tests.log" 2>&1
tests_rc=$?
if [ "$tests_rc" -ne 0 ]; then
  echo "scripts/reliability.sh: reliability tests failed (exit $tests_rc):" >&2
  grep -vE '^=== (RUN|PAUSE|CONT)' "$work/tests.log" | tail -80 >&2
  status=1
fi
grep -oE 'result [a-z0-9_]+ [0-9.]+' "$work/tests.log" >"$work/results"

echo "== fuzzing, $fuzztime per target" >&2
crashers=0
for target in FuzzDecoder:./pkg/stream FuzzAccumulator:./pkg/stream FuzzParsePaste:./pkg/pkce FuzzParsePool:./pkg/keystore FuzzStrip:./internal/termsafe FuzzShape:./pkg/stream; do
  name=${target%%:*} pkg=${target#*:}
  mkdir -p "$work/fuzzcache/$name"
  if go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$pkg" \
      -test.fuzzcachedir="$work/fuzzcache/$name" >"$work/$name.log" 2>&1; then
    echo "   $name: ok ($(grep -oE 'execs: [0-9]+' "$work/$name.log" | tail -1))" >&2
  else
    crashers=$((crashers + 1))
    echo "   $name: FAILED" >&2
    tail -30 "$work/$name.log" >&2
  fi
done
echo "result fuzz_crashers $crashers" >>"$work/results"

# name  comparison  bound
bounds='concurrent_writers_lost eq 0
crash_corrupt_files eq 0
malformed_inputs_panics eq 0
malformed_inputs_files_changed eq 0
fuzz_crashers eq 0
token_leaks eq 0
refresh_race_calls eq 1
keyring_hang_seconds le 4
callback_bind_nonloopback eq 0
keyring_items_lost_on_sync eq 0
tokens_sent_after_redirect eq 0
daemons_spawned eq 0
peak_rss_mb_on_200mb_line le 100
keys_lost_on_401 eq 0
hang_seconds le 4
ledger_rows_lost eq 0'

while read -r name op bound; do
  # Several tests may measure one figure (chat and the proxy, the token
  # endpoint and the Messages API): the worst value counts.
  value=$(awk -v n="$name" '$2 == n && (v == "" || $3 + 0 > v + 0) { v = $3 } END { print v }' "$work/results")
  if [ -z "$value" ]; then
    echo "result $name missing"
    status=1
    continue
  fi
  echo "result $name $value"
  if ! awk -v v="$value" -v b="$bound" -v op="$op" 'BEGIN { exit !((op == "eq" && v + 0 == b + 0) || (op == "le" && v + 0 <= b + 0)) }'; then
    echo "scripts/reliability.sh: $name = $value is worse than its bound ($op $bound)" >&2
    status=1
  fi
done <<<"$bounds"
exit "$status"
