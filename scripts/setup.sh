#!/usr/bin/env bash
# Installs what flow's tests and examples need on a fresh Debian machine.
# Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v dot >/dev/null 2>&1 || need+=(graphviz)
command -v sox >/dev/null 2>&1 || need+=(sox)
command -v ffmpeg >/dev/null 2>&1 || need+=(ffmpeg)
command -v espeak-ng >/dev/null 2>&1 || need+=(espeak-ng)
# Vulkan (`vulkan:N` devices): the loader, and Mesa's drivers, whose lavapipe
# is a Vulkan device on the CPU that the tests run burn's GPU path on.
ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1' || need+=(libvulkan1)
ls /usr/share/vulkan/icd.d/lvp_icd.*.json >/dev/null 2>&1 || need+=(mesa-vulkan-drivers)

if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO=sudo; else SUDO=; fi
  echo "setup: installing ${need[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

# flow-store's tests start a throwaway PostgreSQL cluster with initdb and
# pg_ctl (Debian keeps them in /usr/lib/postgresql/NN/bin, off PATH), and
# test pgvector's `vector(N)` column where the distribution packages it.
pg_bin() {
  command -v initdb >/dev/null 2>&1 && return 0
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1
}
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO=sudo; else SUDO=; fi
if ! pg_bin; then
  echo "setup: installing postgresql (server programs for flow-store's tests)" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
fi
pg_version=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sed 's#.*/postgresql/\([0-9]*\)/bin#\1#' | sort -n | tail -1)
if [ -n "$pg_version" ] && [ ! -f "/usr/share/postgresql/$pg_version/extension/vector.control" ] \
   && apt-cache show "postgresql-$pg_version-pgvector" >/dev/null 2>&1; then
  echo "setup: installing postgresql-$pg_version-pgvector" >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "postgresql-$pg_version-pgvector" >/dev/null || true
fi
# Where the distribution has no pgvector package (Debian 12), build the
# vendored source (third_party/pgvector, v0.8.6) against this server with
# PGXS: needs the server headers, then a few seconds of C.
if [ -n "$pg_version" ] && [ ! -f "/usr/share/postgresql/$pg_version/extension/vector.control" ]; then
  pg_config="/usr/lib/postgresql/$pg_version/bin/pg_config"
  if [ ! -f "/usr/include/postgresql/$pg_version/server/postgres.h" ]; then
    echo "setup: installing postgresql-server-dev-$pg_version (to build pgvector)" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "postgresql-server-dev-$pg_version" make gcc >/dev/null
  fi
  echo "setup: building pgvector from third_party/pgvector" >&2
  build=$(mktemp -d)
  cp -r third_party/pgvector/. "$build"
  make -s -C "$build" -j2 with_llvm=no OPTFLAGS="" PG_CONFIG="$pg_config" >/dev/null
  $SUDO make -s -C "$build" install with_llvm=no OPTFLAGS="" PG_CONFIG="$pg_config" >/dev/null
  rm -rf "$build"
fi
