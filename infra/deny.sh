#!/usr/bin/env bash
# `make deny`: cargo deny over Cargo.lock with deny.toml.
# - licenses, bans and sources need nothing from the network: they always run, and fail the run.
# - advisories need the RustSec advisory database. It is fetched (refreshed) when it can be;
#   where it cannot, the copy already on this machine is used and its date printed; where
#   there is none, the run says plainly that advisories were not checked.
set -euo pipefail
deny=${CARGO_DENY:?set CARGO_DENY to the cargo-deny binary}
cd "$(dirname "$0")/.."

"$deny" --log-level error check licenses bans sources
echo "cargo deny: licenses, bans and sources ok"

dbs="${CARGO_HOME:-$HOME/.cargo}/advisory-dbs"
if "$deny" --log-level off fetch db >/dev/null 2>&1; then
  "$deny" --log-level error --offline check advisories
  echo "cargo deny: advisories ok (database refreshed just now)"
elif db=$(ls -d "$dbs"/advisory-db-*/crates 2>/dev/null | head -1) && [ -n "$db" ]; then
  when=$(git -C "$db/.." log -1 --format=%cs 2>/dev/null || echo "an unknown date")
  echo "cargo deny: the advisory database could not be refreshed from here; checking against the copy of $when in $dbs"
  "$deny" --log-level error --offline check advisories
  echo "cargo deny: advisories ok (database of $when)"
else
  echo "cargo deny: ADVISORIES NOT CHECKED: the advisory database can neither be fetched from here nor found in $dbs."
  echo "  Run 'make deny' on a machine that can fetch it, or clone the RustSec advisory-db repository into $dbs/advisory-db-3157b0e258782691."
fi
