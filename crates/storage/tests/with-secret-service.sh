#!/usr/bin/env bash
# Runs a command against a private, unlocked gnome-keyring Secret Service, never the developer's own.
#
# Usage: crates/storage/tests/with-secret-service.sh COMMAND [ARGS...]
#   e.g. crates/storage/tests/with-secret-service.sh cargo test -p context-harness-storage --all-features
#
# Inside, CONTEXT_HARNESS_TEST_SECRET_SERVICE=1 is exported; the storage crate's real-keyring tests run only
# when it is set (and fail under CI=true when it is not). Needs gnome-keyring, dbus-daemon (dbus-run-session)
# and libsecret-tools (secret-tool):
#   apt-get install -y --no-install-recommends gnome-keyring libsecret-tools dbus-daemon
# The exit status is the command's. Tearing down the private bus ends the keyring daemon.
set -euo pipefail

if [ "$#" -eq 0 ]; then
    echo "usage: $0 COMMAND [ARGS...]" >&2
    exit 2
fi

if [ "${_CH_SECRET_SERVICE_INNER:-}" != 1 ]; then
    for tool in dbus-run-session dbus-send gnome-keyring-daemon secret-tool; do
        if ! command -v "$tool" >/dev/null 2>&1; then
            echo "$0: '$tool' is missing; install: apt-get install -y --no-install-recommends gnome-keyring libsecret-tools dbus-daemon" >&2
            exit 127
        fi
    done
    sandbox="$(mktemp -d "${TMPDIR:-/tmp}/ch-secret-service.XXXXXX")"
    trap 'rm -rf "$sandbox"' EXIT
    mkdir -m 0700 "$sandbox/run" "$sandbox/data"
    # A private XDG_RUNTIME_DIR and a fresh XDG_DATA_HOME (where the keyring files live): a stale
    # login.keyring with another password makes --unlock "succeed" and everything after it fail.
    status=0
    env -u DBUS_SESSION_BUS_ADDRESS \
        XDG_RUNTIME_DIR="$sandbox/run" XDG_DATA_HOME="$sandbox/data" _CH_SECRET_SERVICE_INNER=1 \
        dbus-run-session -- bash "$0" "$@" || status=$?
    exit "$status"
fi

# Inside the private session bus. A throw-away password creates and unlocks the default collection.
printf 'context-harness-test\n' | gnome-keyring-daemon --unlock --components=secrets >/dev/null

# The daemon returns before its bus name is reachable: wait (bounded) for org.freedesktop.secrets.
for _ in $(seq 1 100); do
    if dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
        org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null | grep -q 'boolean true'; then
        export CONTEXT_HARNESS_TEST_SECRET_SERVICE=1
        unset _CH_SECRET_SERVICE_INNER
        exec "$@"
    fi
    sleep 0.05
done
echo "$0: org.freedesktop.secrets did not appear on the private session bus within 5 s" >&2
exit 1
