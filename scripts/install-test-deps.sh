#!/usr/bin/env bash
# Installs the servers and tools the tests start or run:
#   prometheus, prometheus-pushgateway   the telemetry tests' servers
#   docker.io                            a Docker engine (dockerd) for the image tests
#   debootstrap                          the image tests' base image (no registry is reachable)
#   (the linter shellcheck)              the infra tests' lint of the shell scripts
#
# Idempotent: installs only what is missing. As root on Debian/Ubuntu it installs Debian's packages
# without letting their system services start: the tests run their own servers on free ports (and their
# own dockerd when none runs), and a system service would hold ports and keep running after the tests.
# Anywhere else it says what is missing and exits 0; the tests that need it then skip, naming the
# reason, or fail when CI=true.
set -uo pipefail

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]; }

# Debian package -> the binaries that show it is installed (any one of them), and its services.
declare -A BINARIES=(
    [prometheus]="prometheus"
    [prometheus-pushgateway]="prometheus-pushgateway pushgateway"
    [docker.io]="dockerd"
    [debootstrap]="debootstrap"
    [shellcheck]="shellcheck"
)
declare -A SERVICES=(
    [prometheus]="prometheus"
    [prometheus-pushgateway]="prometheus-pushgateway"
    [docker.io]="docker docker.socket containerd"
    [debootstrap]=""
    [shellcheck]=""
)
PACKAGES=(prometheus prometheus-pushgateway docker.io debootstrap shellcheck)

# The first binary of package $1 that is installed (nothing if none is).
installed_binary() {
    local bin
    for bin in ${BINARIES[$1]}; do
        if have "$bin"; then echo "$bin"; return; fi
    done
}

missing=()
for pkg in "${PACKAGES[@]}"; do
    [ -n "$(installed_binary "$pkg")" ] || missing+=("$pkg")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "install-test-deps: ${PACKAGES[*]} are installed"
    exit 0
fi

if [ "${EUID}" -ne 0 ] || ! have apt-get || ! have dpkg; then
    echo "install-test-deps: missing ${missing[*]}; installing needs root and apt-get (Debian/Ubuntu)." >&2
    echo "install-test-deps: install with: sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
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
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() { [ -n "$made_policy" ] && rm -f "$policy"; }
trap cleanup EXIT

echo "install-test-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt_opts=(-o DPkg::Lock::Timeout=300 -q)
if ! apt-get "${apt_opts[@]}" update \
    || ! apt-get "${apt_opts[@]}" install -y --no-install-recommends "${missing[@]}"; then
    echo "install-test-deps: apt-get failed; the tests that need ${missing[*]} will skip (or fail under CI=true)" >&2
    exit 0
fi

# Make sure the services of the packages just installed neither run now nor (under systemd) start at
# boot: they were only wanted for their binaries. Packages that were there before are left alone.
for pkg in "${missing[@]}"; do
    for unit in ${SERVICES[$pkg]}; do
        if [ -d /run/systemd/system ] && have systemctl; then
            case "$unit" in *.*) ;; *) unit="$unit.service" ;; esac
            systemctl disable --now "$unit" >/dev/null 2>&1 || true
        elif [ -x "/etc/init.d/$unit" ]; then
            "/etc/init.d/$unit" stop >/dev/null 2>&1 || true
        fi
    done
done

status=0
for pkg in "${missing[@]}"; do
    found="$(installed_binary "$pkg")"
    if [ -n "$found" ]; then
        echo "install-test-deps: $pkg installed ($found)"
    else
        echo "install-test-deps: $pkg still missing after the install" >&2
        status=1
    fi
done
# Installed or not, exit 0: the tests report what is missing (skip, or fail under CI=true).
[ "$status" -eq 0 ] || echo "install-test-deps: continuing; the tests will report it" >&2
exit 0
