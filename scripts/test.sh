#!/usr/bin/env bash
# The test command of a fresh machine (and exactly what .ci/run calls): build a virtual environment from
# requirements.txt + requirements-dev.txt alone, install the project as the README does (`pip install -e .`, no
# dependency beyond those files), then run the whole suite inside it.
# Usage: bash scripts/test.sh [pytest args]
#
# Nothing installed by hand decides a result: the environment is built with `python -m venv` (no system site
# packages) and only pip's download cache is shared. A previous environment is reused only when it was built from
# these exact requirement files and nothing was installed into it since (its `pip freeze` is unchanged);
# otherwise it is deleted and built again. DISTILL_TEST_VENV names its folder (default .venv); DISTILL_FRESH=1
# forces a rebuild.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${DISTILL_TEST_VENV:-.venv}"
want=$(cat requirements.txt requirements-dev.txt requirements-ray.txt pyproject.toml | sha256sum | cut -d' ' -f1)
# what is installed, the project itself left out: its editable line names the checkout's commit, which every pull moves
frozen() { "$venv/bin/python" -m pip freeze --all --exclude distill-studio --disable-pip-version-check 2>/dev/null \
  | sha256sum | cut -d' ' -f1; }

if [ "${DISTILL_FRESH:-0}" != 1 ] && [ -x "$venv/bin/python" ] && [ -f "$venv/.built-from" ] \
   && [ "$(cat "$venv/.built-from")" = "$want" ] && [ "$(frozen)" = "$(cat "$venv/.frozen" 2>/dev/null)" ]; then
  echo "test.sh: reusing $venv (built from these requirements, unchanged since)"
else
  echo "test.sh: building a fresh $venv from requirements.txt + requirements-dev.txt"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -r requirements.txt -r requirements-dev.txt
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps -e .
  echo "$want" > "$venv/.built-from"
  frozen > "$venv/.frozen"
fi

# Browser tests drive Debian's Chromium (never a downloaded browser).
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "warning: could not install chromium; browser tests will fail" >&2
  else
    echo "warning: chromium is not installed (apt-get install chromium); browser tests will fail" >&2
  fi
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 DISTILL_TEST_VENV_ACTIVE="$venv"
# One worker process per core, at most 4 (each starts its own app server and Chromium for its browser tests); a
# module's tests stay together on one worker, so that its module-wide fixtures start once. DISTILL_TEST_WORKERS=0
# runs them in this one process.
cores=$(nproc)
workers=${DISTILL_TEST_WORKERS:-$(( cores < 4 ? cores : 4 ))}
exec "$venv/bin/python" -m pytest -q -n "$workers" --dist loadfile "$@"
