#!/usr/bin/env bash
# .ci/tools.sh -- dynamic analysis and coverage (mk/tools.mk), run by .ci/run
# after `make check`, which has built build/:
#   1. make check-valgrind   the examples under valgrind memcheck (build/)
#   2. make check-tsan       every test and example under ThreadSanitizer,
#                            from scratch (build-tsan/)
#   3. make coverage         branch coverage of lib/ by the test suite, from
#                            scratch (build-cov/); the table and the error
#                            paths never taken are printed, no threshold
# Runs locally too (bash .ci/tools.sh); it wipes build-tsan/ and build-cov/.
set -euo pipefail

cd "$(dirname "$0")/.."

JOBS=-j2        # the machines have 2 cores; never more
start=$SECONDS

step() {
    printf '\n-------------------------------------------------------------\n'
    printf -- '-- %s   (%ds into tools)\n' "$*" $((SECONDS - start))
    printf -- '-------------------------------------------------------------\n'
}

step "make check-valgrind"
make --no-print-directory $JOBS check-valgrind

step "make check-tsan"
make --no-print-directory clean-tools
make --no-print-directory $JOBS check-tsan

step "make coverage"
make --no-print-directory $JOBS coverage

step "valgrind, TSan and coverage passed in $((SECONDS - start))s"
