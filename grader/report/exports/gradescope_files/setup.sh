#!/usr/bin/env bash
# Gradescope runs this once, as root, while it builds the assignment's image (network on), from
# /autograder/source where the bundle is unpacked. It installs the grader in its own venv with
# the versions pinned in requirements.txt. Written by `grade export gradescope-autograder`.
set -euo pipefail
cd "$(dirname "$0")"
export DEBIAN_FRONTEND=noninteractive

# A Python 3.11+ that can make a venv (Debian and Ubuntu ship venv apart from python3).
python_ok() {
    command -v "$1" >/dev/null 2>&1 \
        && "$1" -c 'import ensurepip, sys, venv; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1
}
find_python() {
    for candidate in python3 python3.13 python3.12 python3.11; do
        if python_ok "$candidate"; then echo "$candidate"; return 0; fi
    done
    return 1
}

# git: GitPython (the grader's) needs the binary. Ubuntu 22.04's python3 is 3.10: 3.11 comes apart.
PYTHON=$(find_python || true)
if [ -z "$PYTHON" ] || ! command -v git >/dev/null 2>&1; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends git ca-certificates >/dev/null
    if [ -z "$PYTHON" ]; then
        apt-get install -y -qq --no-install-recommends python3.11 python3.11-venv >/dev/null \
            || apt-get install -y -qq --no-install-recommends python3 python3-venv >/dev/null
        PYTHON=$(find_python) || { echo "setup.sh: no Python 3.11+ with venv could be installed" >&2; exit 1; }
    fi
fi

"$PYTHON" -m venv /autograder/grader-venv
# uv (pinned in requirements.txt; the grader runs it too) installs the rest in parallel, with the
# system's certificates as pip uses them: minutes faster than pip for these hundred packages.
/autograder/grader-venv/bin/python -m pip install --quiet --no-cache-dir "$(grep -E '^uv==' requirements.txt)"
UV_NATIVE_TLS=1 /autograder/grader-venv/bin/uv pip install --quiet --no-cache --no-deps \
    --python /autograder/grader-venv/bin/python -r requirements.txt ./*.whl
/autograder/grader-venv/bin/grade --version
