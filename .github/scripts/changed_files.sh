#!/usr/bin/env bash
# The files a change of the manager repository touched, one per line: the input of
# `engine rollout plan|report --changed-from` and `engine matrix --changed-from`.
#
# Usage: changed_files.sh BASE HEAD OUTPUT
#   BASE  the commit before the change: the pull request's base, or a push's `before`
#   HEAD  the change (a commit or HEAD)
# Changes on HEAD since it left BASE (`git diff BASE...HEAD`). When BASE is empty, all zeros (a new
# branch) or not in the clone, every file of HEAD counts as changed, with a warning: a rollout then
# covers every customer rather than missing one. Needs the history (actions/checkout fetch-depth: 0).
set -euo pipefail

base=${1:-}
head=${2:?usage: changed_files.sh BASE HEAD OUTPUT}
out=${3:?usage: changed_files.sh BASE HEAD OUTPUT}
if [ -n "$base" ] && [ "$base" != "0000000000000000000000000000000000000000" ] && git cat-file -e "$base^{commit}" 2>/dev/null; then
  git diff --name-only "$base...$head" > "$out"
else
  echo "::warning title=No base commit::'${base:-(none)}' is not in this clone: every file counts as changed"
  git ls-tree -r --name-only "$head" > "$out"
fi
echo "$(wc -l < "$out") changed file(s) listed in $out"
