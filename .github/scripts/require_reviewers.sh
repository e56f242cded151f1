#!/usr/bin/env bash
# Production is protected by default: refuse to apply a production environment whose GitHub environment
# has no required reviewers. GitHub creates an environment a job names when it does not exist yet, without
# any protection, so a forgotten setup would otherwise deploy production unreviewed.
#
# Environment: ENVIRONMENT (the GitHub environment = the infrastructure environment), GITHUB_REPOSITORY,
# GH_TOKEN (the job's token with `actions: read`), ALLOW_UNREVIEWED_PRODUCTION ("true": accept it, with
# a warning — for plans where private repositories cannot have required reviewers).
# Exit 0: reviewers are required (or accepted without); 1: not protected, or the rules cannot be read.
set -euo pipefail

: "${ENVIRONMENT:?}" "${GITHUB_REPOSITORY:?}"
if [ "${ALLOW_UNREVIEWED_PRODUCTION:-}" = "true" ]; then
  echo "::warning title=Unreviewed production::ALLOW_UNREVIEWED_PRODUCTION is true: $ENVIRONMENT is applied without checking for required reviewers"
  exit 0
fi
if ! environment=$(gh api "repos/$GITHUB_REPOSITORY/environments/$ENVIRONMENT"); then
  echo "::error title=Production protection unknown::cannot read the GitHub environment $ENVIRONMENT (the job needs permissions: actions: read)"
  exit 1
fi
if jq -e '[.protection_rules[]? | select(.type == "required_reviewers" and ((.reviewers // []) | length) > 0)] | length > 0' \
    <<<"$environment" >/dev/null; then
  echo "The GitHub environment $ENVIRONMENT has required reviewers: the approval came before this job started."
  exit 0
fi
echo "::error title=Production is not protected::the GitHub environment $ENVIRONMENT has no required reviewers, so nothing was applied. Add them (Settings → Environments → $ENVIRONMENT → Required reviewers; docs/SETUP.md 1.3), or set the repository variable ALLOW_UNREVIEWED_PRODUCTION to true."
exit 1
