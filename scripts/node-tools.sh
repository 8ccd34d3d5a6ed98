#!/usr/bin/env bash
# Installs the Node tools the checks use, at pinned versions, into a local
# folder (not globally), and prints that folder's bin directory:
#
#   bin=$(scripts/node-tools.sh)
#   "$bin/redocly" lint api/openapi.yaml
#   "$bin/newman" run postman/chat.postman_collection.json
#
# A tool already installed at its version is not installed again, so CI can
# cache the folder (NODE_TOOLS_DIR, default .ci/node).
set -euo pipefail
cd "$(dirname "$0")/.."

REDOCLY_VERSION=${REDOCLY_VERSION:-2.77.0}
NEWMAN_VERSION=${NEWMAN_VERSION:-6.2.2}
dir=${NODE_TOOLS_DIR:-.ci/node}

command -v npm >/dev/null || { echo "node-tools: npm is required (Node.js 20 or later)" >&2; exit 1; }

installed() { # package, version
  local pj="$dir/node_modules/$1/package.json"
  [ -f "$pj" ] && [ "$(node -p "require('./$pj').version" 2>/dev/null)" = "$2" ]
}

want=()
installed @redocly/cli "$REDOCLY_VERSION" || want+=("@redocly/cli@$REDOCLY_VERSION")
installed newman "$NEWMAN_VERSION" || want+=("newman@$NEWMAN_VERSION")
if [ ${#want[@]} -gt 0 ]; then
  mkdir -p "$dir"
  # The folder holds installed packages only; keep it out of git.
  [ -f "$dir/.gitignore" ] || printf '*\n' >"$dir/.gitignore"
  echo "node-tools: installing ${want[*]} into $dir" >&2
  # Both at once: a separate install would prune the other package.
  npm install --prefix "$dir" --no-save --no-audit --no-fund --loglevel=error \
    "@redocly/cli@$REDOCLY_VERSION" "newman@$NEWMAN_VERSION" >&2
fi
echo "$(cd "$dir/node_modules/.bin" && pwd)"
