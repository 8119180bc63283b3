#!/usr/bin/env bash
# Sums cargo's "test result:" lines of a test log into one closing line,
# "Summary: N passed, M failed" (cargo's own last line is often a doc-test
# section with nothing in it).
set -euo pipefail
awk '/^test result:/ { passed += $4; failed += $6 }
     END { printf "Summary: %d passed, %d failed\n", passed, failed; exit (failed > 0) }' "$1"
