#!/usr/bin/env bash
# Creates (once) the Python environment of the analysts' checks under the
# cargo target directory and prints the path of its interpreter.
#
#   analysis/venv.sh            # -> target/analysis-venv/bin/python
#
# Reinstalls when analysis/requirements.txt changes. Fails with a clear
# message when Python 3 (with venv) is missing: the checks are never
# skipped silently.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
target=${CARGO_TARGET_DIR:-$root/target}
venv=$target/analysis-venv
python=${PYTHON:-python3}
if ! command -v "$python" >/dev/null 2>&1; then
    echo "error: the analysts' checks need Python 3 with venv and pip ($python not found)" >&2
    echo "       (on Debian: sudo apt-get install python3 python3-venv)" >&2
    exit 1
fi
stamp=$venv/.requirements
mkdir -p "$target"
# One installer at a time: cargo runs test binaries side by side.
exec 9>"$target/analysis-venv.lock"
flock 9
if [ ! -x "$venv/bin/python" ] || ! cmp -s "$here/requirements.txt" "$stamp"; then
    rm -rf "$venv"
    if ! "$python" -m venv "$venv" >&2; then
        echo "error: '$python -m venv' failed (on Debian: sudo apt-get install python3-venv)" >&2
        exit 1
    fi
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt" >&2
    cp "$here/requirements.txt" "$stamp"
fi
echo "$venv/bin/python"
