#!/usr/bin/env bash
# Run a command as an unprivileged controller user, as on a release engineer's laptop or a CI runner: its own
# HOME, no root, no sudo, a clean environment (no ANSIBLE_* of the caller).
#   unprivileged.sh HOME PYTHON [VAR=value ...] -- COMMAND [ARGS...]
# PYTHON is the venv's interpreter; its bin directory leads PATH. Not root: runs as the current user.
# Root (tests run as root here): runs as `nobody`, in a private mount namespace where nobody's passwd entry
# has HOME as its home (Ansible expands ~ from it; nobody's is /nonexistent) and where, when the venv was made
# from a Python under /root (pyenv), that Python alone is reachable: /root is otherwise closed to others.
# Nothing outside the namespace changes.
set -euo pipefail
home=$1 python=$2
shift 2
envs=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do envs+=("$1"); shift; done
[ $# -gt 0 ] && shift
path="$(dirname "$python"):/usr/local/bin:/usr/bin:/bin"
if [ "$(id -u)" != 0 ]; then
  exec env -i HOME="$home" PATH="$path" LANG=C.UTF-8 "${envs[@]}" "$@"
fi
prefix="$(dirname "$(dirname "$(readlink -f "$python")")")"
exec unshare --mount --propagation private -- bash -c '
set -euo pipefail
home=$1 prefix=$2 path=$3; shift 3
scratch=$(mktemp -d /tmp/shipshape-unprivileged.XXXXXX)
mount -t tmpfs -o mode=0755 tmpfs "$scratch"
if [[ $prefix == /root/* ]]; then
  mkdir "$scratch/root"
  mount --bind /root "$scratch/root"
  mount -t tmpfs -o mode=0711 tmpfs /root
  mkdir -p "$prefix"
  mount --bind "$scratch$prefix" "$prefix"
fi
sed "s#^\(nobody:[^:]*:[^:]*:[^:]*:[^:]*\):[^:]*:#\1:$home:#" /etc/passwd > "$scratch/passwd"
mount --bind "$scratch/passwd" /etc/passwd
set +e
runuser -u nobody -- env -i HOME="$home" PATH="$path" LANG=C.UTF-8 "$@"
rc=$?
cd /
umount --lazy /etc/passwd "$scratch/root" "$scratch" 2>/dev/null
rmdir "$scratch"
exit $rc
' unprivileged "$home" "$prefix" "$path" "${envs[@]}" "$@"
