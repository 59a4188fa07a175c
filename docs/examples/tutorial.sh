#!/usr/bin/env bash
# The README's five-minute tutorial as one script: a hub, two devices, a
# message.  tests/e2e/test_tutorial.py runs it, so the tutorial stays true.
#
#   BIN   directory holding twistd and pzctl   (default: .venv/bin)
#   WORK  scratch directory                    (default: a new temporary one)
#   PORT, WEB_PORT  hub ports                  (default: 8000, 9000)
set -euo pipefail
BIN=${BIN:-.venv/bin}
WORK=${WORK:-$(mktemp -d)}
PORT=${PORT:-8000}
WEB_PORT=${WEB_PORT:-9000}
cd "$WORK"
trap 'for p in hub phone laptop; do [ -f $p.pid ] && kill $(cat $p.pid) 2>/dev/null; done; true' EXIT

# 1. Start a hub for the zone "alice@127.0.0.1" (in the background here;
#    add -n to keep it in the foreground).
"$BIN/twistd" --pidfile hub.pid --logfile hub.log \
    pzh --data-dir hub --name alice --interface 127.0.0.1 --port "$PORT" --web-port "$WEB_PORT"
"$BIN/pzctl" --hub-dir hub wait

# 2. Ask the hub for a pairing code per device and start each device with it,
#    passed on standard input (--pair -) or in a file (--pair-file), so it
#    never shows in the process list.
phone_code=$("$BIN/pzctl" --hub-dir hub pair --device phone)
echo "pairing code for the phone: $phone_code"
printf '%s\n' "$phone_code" | "$BIN/twistd" --pidfile phone.pid --logfile phone.log \
    pzp --data-dir phone --name phone --pair -
(umask 077 && "$BIN/pzctl" --hub-dir hub pair --device laptop > laptop.code)
"$BIN/twistd" --pidfile laptop.pid --logfile laptop.log \
    pzp --data-dir laptop --name laptop --pair-file laptop.code
rm laptop.code

# 3. Watch them connect.
"$BIN/pzctl" --pzp-dir phone wait --timeout 30 >/dev/null
"$BIN/pzctl" --pzp-dir laptop wait --timeout 30 >/dev/null
"$BIN/pzctl" --pzp-dir phone status
"$BIN/pzctl" --hub-dir hub devices

# 4. Route a message from the phone to the laptop through the hub.
"$BIN/pzctl" --pzp-dir phone send alice@127.0.0.1/laptop "hello from the phone"
"$BIN/pzctl" --pzp-dir laptop inbox
