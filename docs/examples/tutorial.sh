#!/usr/bin/env bash
# The README's five-minute tutorial as one script: a hub, two devices, a
# message, a hub restart, a shared setting, a service call.  The commands are the README's, as written, run
# from one folder; the foreground services the README starts in their own
# terminals run here in the background.  tests/e2e/test_tutorial.py runs
# it, so the tutorial stays true.
#
#   BIN   directory holding twistd and pzctl   (default: .venv/bin)
#   WORK  scratch directory                    (default: a new temporary one)
#   PORT, WEB_PORT  hub ports                  (default: 8000, 9000)
set -euo pipefail
BIN=${BIN:-.venv/bin}
WORK=${WORK:-$(mktemp -d)}
PORT=${PORT:-8000}
WEB_PORT=${WEB_PORT:-9000}
PATH="$BIN:$PATH"
cd "$WORK"
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait' EXIT

# 1. Start a hub (terminal 1).
twistd -n pzh --data-dir hub --name alice --interface 127.0.0.1 --port "$PORT" --web-port "$WEB_PORT" >hub.out 2>&1 &
hub=$!; pids+=("$hub")
pzctl --hub-dir hub wait

# 2. Pair a device (terminal 2, then one terminal per device).  The code
#    goes in on standard input (--pair -), as a person pastes it, so it
#    never shows in the process list.
phone_code=$(pzctl --hub-dir hub pair --device phone)
echo "pairing code for the phone: $phone_code"
printf '%s\n' "$phone_code" | twistd -n pzp --data-dir phone --name phone --pair - >phone.out 2>&1 &
pids+=($!)

# 3. Watch it connect: pair a second device (laptop) the same way, its code
#    in a file this time (--pair-file).
(umask 077 && pzctl --hub-dir hub pair --device laptop >laptop.code)
twistd -n pzp --data-dir laptop --name laptop --pair-file laptop.code >laptop.out 2>&1 &
pids+=($!)
pzctl --pzp-dir phone wait --timeout 30 >/dev/null
pzctl --pzp-dir laptop wait --timeout 30 >/dev/null
rm laptop.code
pzctl --pzp-dir phone status
pzctl --hub-dir hub devices

# 4. Route a message.
pzctl --pzp-dir phone send alice@127.0.0.1/laptop "hello from the phone"
pzctl --pzp-dir laptop inbox

# Stop the hub and start it again: the devices reconnect on their own.
kill "$hub"; wait "$hub" || true
pzctl --pzp-dir phone wait --state NotConnected --timeout 30 >/dev/null
twistd -n pzh --data-dir hub --name alice --interface 127.0.0.1 --port "$PORT" --web-port "$WEB_PORT" >>hub.out 2>&1 &
pids+=($!)
pzctl --pzp-dir phone wait >/dev/null
pzctl --pzp-dir laptop wait >/dev/null
echo "phone reconnected"

# 5. Share a setting.
sed -i 's/"peer_connection": "yes"/"peer_connection": "no"/' phone/zone/items/preferences.json
pzctl --pzp-dir phone sync
pzctl --pzp-dir laptop sync
grep peer_connection laptop/zone/items/preferences.json

# 6. Call a service.
pzctl --pzp-dir phone call alice@127.0.0.1/laptop get42 get42
pzctl --pzp-dir phone services
