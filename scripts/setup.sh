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

ensure_venv() {  # ensure_venv EXTRAS
  if [ ! -x .venv/bin/python ]; then
    if ! python3 -m venv .venv 2>/dev/null; then
      rm -rf .venv
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
      python3 -m venv .venv
    fi
  fi
  PY=$PWD/.venv/bin/python
  echo "== pip install -e .[$1] into .venv"
  # -U, eager: the newest releases the ranges in pyproject.toml allow, as a fresh install gets
  "$PY" -m pip install -q --disable-pip-version-check -U --upgrade-strategy eager -e ".[$1]"
}
