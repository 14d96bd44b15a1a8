#!/usr/bin/env bash
# Runs a command that must fail: exit non-zero within MAX_SECONDS, printing a
# line that matches REGEX. A command still running at MAX_SECONDS is a hang.
#   expect_failure.sh MAX_SECONDS REGEX command [args...]
set -u
max_seconds=$1
regex=$2
shift 2
start=$(date +%s)
output=$(timeout --kill-after=5 "$max_seconds" "$@" 2>&1)
rc=$?
elapsed=$(( $(date +%s) - start ))
printf '%s\n' "$output"
if (( elapsed >= max_seconds )); then
  echo "expect_failure: FAILED: still running after ${max_seconds} s (a hang)"
  exit 1
fi
if (( rc == 0 )); then
  echo "expect_failure: FAILED: exit status 0, but the command must fail"
  exit 1
fi
if ! grep -Eq -- "$regex" <<<"$output"; then
  echo "expect_failure: FAILED: no output line matches /$regex/"
  exit 1
fi
echo "expect_failure: exit status $rc after ${elapsed} s with /$regex/ in the output, as expected"
