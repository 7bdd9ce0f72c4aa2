#!/usr/bin/env bash
# Installs the Debian packages that Concord's tests and benchmarks run against: a real etcd and
# etcdctl (the compatibility suite compares Concord with them), util-linux's setpriv (the
# autoscaler's process provider makes its children die with it), iptables (the health-check
# test drops SYNs on a loopback port) and chromium (the dashboard's browser test drives it headless
# through playwright-core, which downloads no browser of its own), and Go with etcd's packaged Go
# sources (golang-go, golang-etcd-server-dev: the store benchmark's load generator is built from
# them offline by scripts/build-go-load.sh, and a test builds it). Run as root; .ci/run calls it.
# Tests never install packages themselves: they would collide on the package manager's lock.
set -euo pipefail

PACKAGES=(etcd-server etcd-client util-linux iptables chromium golang-go golang-etcd-server-dev)

missing=()
for package in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "test dependencies already installed: ${PACKAGES[*]}"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-test-deps: need root to install ${missing[*]} (run: sudo bash scripts/install-test-deps.sh)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends "${missing[@]}"
# Debian's etcd-server package may enable a system etcd on the default ports; tests start their
# own members on free ports, so stop it to keep 2379/2380 free for `concord up` and benchmarks.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet etcd 2>/dev/null; then
  systemctl stop etcd || true
fi
