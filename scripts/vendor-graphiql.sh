#!/usr/bin/env bash
# Vendors the browser release files of GraphiQL and React that Tandem
# serves at /graphiql (built into the binary, so the IDE renders without
# any network beyond the Tandem server).
#
# The versions are those of crates/api/assets/graphiql/package.json; to
# upgrade, change them there and run this script. It downloads each
# package's published tarball with `npm pack` (npm checks its integrity),
# copies the prebuilt minified files and the licence, and rewrites
# SHA256SUMS, which a test checks against the files built into the binary.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=crates/api/assets/graphiql
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

version() {
    node -e 'const p = require(process.argv[1]); console.log(p.dependencies[process.argv[2]])' \
        "$PWD/$dest/package.json" "$1"
}

# package, then the files of its tarball to vendor (beside its LICENSE).
vendor() {
    local package=$1
    shift
    local v
    v=$(version "$package")
    echo "==> $package@$v"
    (cd "$work" && npm pack --silent "$package@$v" >/dev/null)
    mkdir -p "$work/$package"
    tar -xzf "$work/$package-$v.tgz" -C "$work/$package"
    cp "$work/$package/package/LICENSE" "$dest/LICENSE.$package"
    local file
    for file in "$@"; do
        cp "$work/$package/package/$file" "$dest/$(basename "$file")"
    done
}

vendor graphiql graphiql.min.js graphiql.min.css
vendor react umd/react.production.min.js
vendor react-dom umd/react-dom.production.min.js

(cd "$dest" && sha256sum graphiql.min.js graphiql.min.css react.production.min.js react-dom.production.min.js >SHA256SUMS)
echo "==> vendored into $dest:"
cat "$dest/SHA256SUMS"
