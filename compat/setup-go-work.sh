#!/usr/bin/env bash
# Make compat/ build against agno-golang v0.1.6.
#
# compat/go.mod requires github.com/devalexandre/agno-golang v0.1.6 like any
# other module. Where the Go module proxy serves it, nothing more is needed:
# this script fills go.sum with the module's checksums and stops.
# Where the proxy refuses it, set AGNO_GOLANG_SRC to an unmodified copy of the
# module at that tag (its go.mod and agno/ packages): the script writes
# compat/go.work, which is not tracked, with a replace directive pointing there.
# A go.work written earlier is kept while the folder it names still holds the
# module, so later runs need no variable.
#
#   AGNO_GOLANG_SRC=/path/to/agno-golang compat/setup-go-work.sh
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v go >/dev/null 2>&1; then
    # Nothing to build against: the Go tests skip and the benchmarks leave out their Go column.
    echo "setup-go-work: go is not on PATH; the Go tests and benchmarks are skipped (https://go.dev/dl/)" >&2
    exit 0
fi

module=github.com/devalexandre/agno-golang
version=v0.1.6

is_module_dir() {
    [ -f "$1/go.mod" ] && [ "$(sed -n 's/^module[[:space:]]*//p' "$1/go.mod" | head -1)" = "$module" ]
}

if [ -n "${AGNO_GOLANG_SRC:-}" ]; then
    src=$(cd "$AGNO_GOLANG_SRC" && pwd)
    if ! is_module_dir "$src"; then
        echo "setup-go-work: $src does not hold $module (no go.mod naming it)" >&2
        exit 1
    fi
    cat > go.work <<WORK
// Written by compat/setup-go-work.sh; not tracked. Builds compat/ against the
// copy of $module $version in $src.
go 1.26.0

use .

replace $module $version => $src
WORK
    echo "setup-go-work: go.work -> $src"
    exit 0
fi

if [ -f go.work ]; then
    dir=$(sed -n "s|^replace $module $version => ||p" go.work | head -1)
    if [ -n "$dir" ] && is_module_dir "$dir"; then
        exit 0
    fi
    echo "setup-go-work: go.work names no copy of $module; removing it" >&2
    rm -f go.work go.work.sum
fi

if GOWORK=off GOFLAGS=-mod=mod go mod download "$module@$version" >/dev/null 2>&1; then
    # Records the module's checksums in go.sum (they cannot be written here
    # where the proxy refuses the module).
    GOWORK=off GOFLAGS=-mod=mod go list ./... >/dev/null
    exit 0
fi
echo "setup-go-work: the Go module proxy does not serve $module@$version;" >&2
echo "  set AGNO_GOLANG_SRC to a copy of the module at that tag and run this again" >&2
exit 1
