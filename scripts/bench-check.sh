#!/usr/bin/env bash
# Kept for old instructions: the check benchmark is now a section of scripts/bench, which
# also times certbot certificates, tries the service user's access in the shell baseline
# (sudo -u), and runs 1 to 10,000 lineages.
#   sudo scripts/bench-check.sh [scripts/bench options]
exec "$(dirname "${BASH_SOURCE[0]}")/bench" check "$@"
