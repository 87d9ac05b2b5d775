# Shared helpers for the shell scripts in scripts/ and .ci/run. Sourced, never run.
# shellcheck shell=bash

VENV="${SHIPSHAPE_VENV:-$ROOT/.venv}"
export ANSIBLE_COLLECTIONS_PATH="$ROOT/.collections"
export ANSIBLE_CONFIG="$ROOT/ansible.cfg"

log() { printf '[shipshape %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'shipshape: error: %s\n' "$*" >&2; exit 1; }

apt_updated=0
apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  if [ "$apt_updated" = 0 ]; then
    apt-get update -qq >/dev/null || die "apt-get update failed; check the apt sources"
    apt_updated=1
  fi
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null \
    || die "apt-get could not install: $*"
}

# The Debian mirror the host itself uses (deb822 sources first, then sources.list).
debian_mirror() {
  local uri
  uri=$(grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null \
        | awk '{print $2}' | grep -E '/debian/?$' | head -n1 || true)
  if [ -z "$uri" ]; then
    uri=$(grep -hE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
          | awk '{print $2}' | grep -E '/debian/?$' | head -n1 || true)
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}

activate_venv() {
  [ -x "$VENV/bin/python" ] || die "no venv at $VENV: run scripts/bootstrap first"
  # shellcheck disable=SC1091
  source "$VENV/bin/activate"
}
