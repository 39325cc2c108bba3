#!/usr/bin/env bash
# Runs every end-to-end test script in this directory (all *.sh but lib.sh and run-all.sh),
# one after the other, each under a time limit (E2E_TEST_TIMEOUT seconds, default 600).
# Prints a summary; exit status 1 if any script failed.
#
#   sudo Tests/e2e/run-all.sh [NAME...]     # NAME: check, or check.sh; default every script
#   sudo Tests/e2e/run-all.sh --binary-only # every script but those marked `# e2e-scope: package`
#                                           # (they test the .deb / install.sh in a booted
#                                           # systemd root, not $CERTRELOAD as it is)
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
limit=${E2E_TEST_TIMEOUT:-600}
binary_only=false
if [[ ${1:-} == --binary-only ]]; then binary_only=true; shift; fi

scripts=()
if (($# > 0)); then
    for name in "$@"; do scripts+=("$here/${name%.sh}.sh"); done
else
    for script in "$here"/*.sh; do
        case ${script##*/} in lib.sh | run-all.sh) continue ;; esac
        if $binary_only && grep -q '^# e2e-scope: package' "$script"; then continue; fi
        scripts+=("$script")
    done
fi
((${#scripts[@]} > 0)) || { echo "no e2e test scripts in $here"; exit 1; }

results=()
failed=0
for script in "${scripts[@]}"; do
    name=${script##*/}
    printf '\n######## %s\n' "$name"
    start=$(date +%s)
    if [[ ! -f $script ]]; then
        rc=127
        echo "no such test script: $script"
    else
        timeout --kill-after=10 "$limit" bash "$script"
        rc=$?
    fi
    elapsed=$(($(date +%s) - start))
    case $rc in
        0) verdict=PASS ;;
        124 | 137) verdict="FAIL (timed out after ${limit}s)" ;;
        *) verdict="FAIL (exit $rc)" ;;
    esac
    [[ $rc -eq 0 ]] || failed=$((failed + 1))
    results+=("$(printf '%-28s %-28s %4ss' "$name" "$verdict" "$elapsed")")
done

printf '\n######## e2e summary\n'
printf '%s\n' "${results[@]}"
printf '%d script(s), %d passed, %d failed\n' "${#scripts[@]}" "$((${#scripts[@]} - failed))" "$failed"
((failed == 0))
