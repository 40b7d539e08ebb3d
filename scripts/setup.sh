# Sourced by scripts/demo and scripts/test: installs what dirsync needs on a fresh
# Debian/Ubuntu machine as root, into a virtual environment at .venv (Debian's own Python
# refuses system-wide pip installs, PEP 668). Sets $PY to the environment's python.

apt_install() {
  local missing=()
  for spec in "$@"; do
    local check=${spec%%:*} package=${spec#*:}
    if [ -z "$check" ]; then  # ":package": a package without a command of its own
      dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" \
        || missing+=("$package")
      continue
    fi
    command -v "$check" >/dev/null 2>&1 || [ -x "/usr/sbin/$check" ] || missing+=("$package")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "== apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

ensure_venv() {  # ensure_venv EXTRAS [DIR PYTHON]: a venv at DIR (.venv, from python3)
  local dir=${2:-.venv} python=${3:-python3}
  if [ ! -x "$dir/bin/python" ]; then
    if ! "$python" -m venv "$dir" 2>/dev/null; then
      rm -rf "$dir"
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
      "$python" -m venv "$dir"
    fi
  fi
  PY=$PWD/$dir/bin/python
  echo "== pip install -e .[$1] into $dir ($("$PY" -c 'import platform; print("Python", platform.python_version())'))"
  # -U, eager: the newest releases the ranges in pyproject.toml allow, as a fresh install gets
  "$PY" -m pip install -q --disable-pip-version-check -U --upgrade-strategy eager -e ".[$1]"
}

python_minor() {  # python_minor PYTHON: prints e.g. 3.11, or nothing if PYTHON does not run
  "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || true
}

find_python() {  # find_python 3.13: prints a Python 3.13 (PATH, then pyenv), or fails
  local want=$1 candidate
  for candidate in "$(command -v "python$want" 2>/dev/null || true)" \
      "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$want"*/bin/python; do
    if [ -n "$candidate" ] && [ -x "$candidate" ] && [ "$(python_minor "$candidate")" = "$want" ]; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}
