#!/usr/bin/env bash
# Lints api/openapi.yaml with Redocly CLI (rules in redocly.yaml); exits
# non-zero on any error.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=$(scripts/node-tools.sh)
# No usage reports or update checks from CI.
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true
exec "$bin/redocly" lint --config redocly.yaml api/openapi.yaml
