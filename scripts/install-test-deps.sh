#!/usr/bin/env bash
# Installs the servers the telemetry tests start: Prometheus and the Prometheus Pushgateway.
#
# Idempotent: does nothing when both binaries are on PATH. As root on Debian/Ubuntu it installs
# Debian's packages (prometheus, prometheus-pushgateway) without letting their system services
# start: the tests run their own servers on free ports, and a system service would hold 9090/9091
# and keep running after the tests. Anywhere else it says what is missing and exits 0; the tests
# that need the servers then skip, naming the reason, or fail when CI=true.
set -uo pipefail

PACKAGES=(prometheus prometheus-pushgateway)
have() { command -v "$1" >/dev/null 2>&1; }

missing=()
have prometheus || missing+=(prometheus)
have prometheus-pushgateway || have pushgateway || missing+=(prometheus-pushgateway)
if [ ${#missing[@]} -eq 0 ]; then
    echo "install-test-deps: prometheus and prometheus-pushgateway are installed"
    exit 0
fi

if [ "${EUID}" -ne 0 ] || ! have apt-get || ! have dpkg; then
    echo "install-test-deps: missing ${missing[*]}; installing needs root and apt-get (Debian/Ubuntu)." >&2
    echo "install-test-deps: install with: sudo apt-get install -y --no-install-recommends ${PACKAGES[*]}" >&2
    echo "install-test-deps: until then the tests that need them are skipped (and fail under CI=true)." >&2
    exit 0
fi

# Keep the packages' services from starting while they are installed: invoke-rc.d and
# deb-systemd-invoke ask policy-rc.d, and exit code 101 means "action forbidden".
policy=/usr/sbin/policy-rc.d
made_policy=""
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# Written by xit scripts/install-test-deps.sh while it installs; removed after.\nexit 101\n' > "$policy"
    chmod 755 "$policy"
    made_policy=1
fi
cleanup() { [ -n "$made_policy" ] && rm -f "$policy"; }
trap cleanup EXIT

echo "install-test-deps: installing ${missing[*]} (Debian packages ${PACKAGES[*]})"
export DEBIAN_FRONTEND=noninteractive
apt_opts=(-o DPkg::Lock::Timeout=300 -q)
if ! apt-get "${apt_opts[@]}" update \
    || ! apt-get "${apt_opts[@]}" install -y --no-install-recommends "${PACKAGES[@]}"; then
    echo "install-test-deps: apt-get failed; the tests that need ${missing[*]} will skip (or fail under CI=true)" >&2
    exit 0
fi

# Make sure the services of the packages just installed neither run now nor (under systemd) start at
# boot: they were only wanted for their binaries. Packages that were there before are left alone.
for unit in "${missing[@]}"; do
    if [ -d /run/systemd/system ] && have systemctl; then
        systemctl disable --now "$unit.service" >/dev/null 2>&1 || true
    elif [ -x "/etc/init.d/$unit" ]; then
        "/etc/init.d/$unit" stop >/dev/null 2>&1 || true
    fi
done

status=0
for bin in prometheus prometheus-pushgateway; do
    if have "$bin"; then
        echo "install-test-deps: $("$bin" --version 2>&1 | head -n 1)"
    else
        echo "install-test-deps: $bin still missing after the install" >&2
        status=1
    fi
done
# Installed or not, exit 0: the tests report what is missing (skip, or fail under CI=true).
[ "$status" -eq 0 ] || echo "install-test-deps: continuing; the tests will report it" >&2
exit 0
