"""
The benchmark's client: mutual-TLS connections per second.

One program drives every server of the connection-rate table, with the same
settings.  It runs C{--workers} processes; each opens connections one after
the other, each with the next device certificate of its own share (so one
device id is never connected twice at once), and for every connection:

 1. connects over TCP to 127.0.0.1 and completes the TLS handshake with
    pyOpenSSL -- the TLS stack the project's devices and the Twisted servers
    use -- presenting the device certificate and verifying the server's
    certificate against the zone CA and the address, as a device does;
 2. with C{--mode hub}, reads the hub's first frame (4-byte big-endian
    length, then JSON) and checks that its payload's status is
    C{registered} for this device;
 3. closes TLS properly: sends close_notify and waits for the server's
    close_notify (or its end of the connection), then closes the socket.

Step 3 makes every connection a closed loop for every server alike: in TLS
1.3 the client finishes its handshake before the server has read the
client's certificate, so without waiting for the server's answer a client
would count handshakes the server has not done yet.  The server's reply to
close_notify comes after it has processed everything before it.

A run has a warm-up (connections made but not counted), then a measurement
window of C{--duration} seconds that all workers share; a connection counts
if it completes inside the window.  Alternatively C{--count} makes a fixed
number of connections (no warm-up), bounded by C{--max-time}.  Every
socket operation is bounded by C{--timeout}.

Prints one JSON object: connections counted, the rate, errors, the TLS
version, cipher and key-exchange group, latency percentiles, and the
client's own CPU time per connection.

    python -m bench.client --port P --certs DIR [--mode hub|tls] [--workers 2]
        [--devices 300] [--warmup 1] [--duration 6] [--count N]
"""

import argparse
import ipaddress
import json
import multiprocessing
import os
import resource
import socket
import struct
import sys
import time

from OpenSSL import SSL

try:
    from OpenSSL._util import lib as _lib
except ImportError:  # pragma: no cover
    _lib = None


def _checkAddress(context, host: str) -> None:
    """
    Make OpenSSL check that the server's certificate names C{host} (an IP
    address SAN), as the devices do.  pyOpenSSL has no public call for it.
    """
    packed = ipaddress.ip_address(host).packed
    param = _lib.SSL_CTX_get0_param(context._context)
    if _lib.X509_VERIFY_PARAM_set1_ip(param, packed, len(packed)) != 1:
        raise RuntimeError("cannot set the expected server address")


def _contexts(args, worker: int) -> list:
    contexts = []
    caFile = os.path.join(args.certs, "ca.pem")
    for index in range(worker, args.devices, args.workers):
        name = f"dev{index:05d}"
        context = SSL.Context(SSL.TLS_CLIENT_METHOD)
        context.set_min_proto_version(SSL.TLS1_2_VERSION)
        if args.tls == "1.2":
            context.set_max_proto_version(SSL.TLS1_2_VERSION)
        context.load_verify_locations(caFile)
        context.use_certificate_file(os.path.join(args.certs, name + ".pem"))
        context.use_privatekey_file(os.path.join(args.certs, name + ".key"))
        context.check_privatekey()
        context.set_verify(SSL.VERIFY_PEER)
        _checkAddress(context, args.host)
        contexts.append((name, context))
    return contexts


def _readExactly(tls, count: int) -> bytes:
    chunks = []
    while count:
        data = tls.recv(count)
        if not data:
            raise ConnectionError("the server closed the connection before its frame")
        chunks.append(data)
        count -= len(data)
    return b"".join(chunks)


def _bound(sock, seconds: float) -> None:
    # OpenSSL does its own I/O on the descriptor, so the socket stays in
    # blocking mode and the kernel bounds each wait.
    sock.settimeout(None)
    whole = int(seconds)
    value = struct.pack("ll", whole, int((seconds - whole) * 1e6))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, value)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, value)


def connectOnce(args, name: str, context) -> tuple:
    """
    One connection, start to close.  Returns (TLS version, cipher, group).
    """
    sock = socket.create_connection((args.host, args.port), timeout=args.timeout)
    try:
        _bound(sock, args.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        tls = SSL.Connection(context, sock)
        tls.set_connect_state()
        tls.do_handshake()
        info = (tls.get_protocol_version_name(), tls.get_cipher_name(), tls.get_group_name())
        if args.mode == "hub":
            (length,) = struct.unpack(">I", _readExactly(tls, 4))
            if length > 1 << 20:
                raise ValueError(f"frame of {length} bytes")
            frame = json.loads(_readExactly(tls, length))
            payload = frame.get("payload", {})
            if payload.get("status") != "registered" or not str(
                payload.get("device", "")
            ).endswith("/" + name):
                raise ValueError(f"not registered: {payload}")
        tls.shutdown()
        try:
            while tls.recv(65536):
                pass  # anything the server sent meanwhile (pzpUpdate) is dropped
        except SSL.ZeroReturnError:
            pass  # the server's close_notify
        except SSL.SysCallError:
            pass  # the server closed the connection without one
    finally:
        sock.close()
    return info


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _worker(args, worker: int, pipe) -> None:
    contexts = _contexts(args, worker)
    pipe.send("ready")
    start = pipe.recv()  # monotonic time at which the warm-up starts
    windowStart = start + (0 if args.count else args.warmup)
    windowEnd = (
        start + args.max_time if args.count else windowStart + args.duration
    )
    quota = None
    if args.count:
        quota = args.count // args.workers + (1 if worker < args.count % args.workers else 0)
    delay = start - time.monotonic()
    if delay > 0:
        time.sleep(delay)
    cpu = _cpu()
    counted = total = errors = 0
    firstError = None
    info = None
    latencies = []
    index = 0
    while True:
        now = time.monotonic()
        if now >= windowEnd or (quota is not None and total >= quota):
            break
        if total + errors >= args.max_connections:
            break
        name, context = contexts[index % len(contexts)]
        index += 1
        try:
            info = connectOnce(args, name, context)
        except Exception as e:
            errors += 1
            if firstError is None:
                firstError = f"{type(e).__name__}: {e}"
            if errors > 100 and errors > total:
                break
            continue
        done = time.monotonic()
        total += 1
        if windowStart <= done < windowEnd:
            counted += 1
            latencies.append(done - now)
    pipe.send({
        "counted": counted, "total": total, "errors": errors, "first_error": firstError,
        "info": info, "latencies": latencies, "finished": time.monotonic(),
        "cpu": _cpu() - cpu,
    })


def run(args) -> dict:
    ctx = multiprocessing.get_context("fork")
    pipes, procs = [], []
    for worker in range(args.workers):
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_worker, args=(args, worker, child), daemon=True)
        proc.start()
        pipes.append(parent)
        procs.append(proc)
    for pipe in pipes:
        if pipe.recv() != "ready":
            raise RuntimeError("a worker failed to start")
    start = time.monotonic() + 0.05
    for pipe in pipes:
        pipe.send(start)
    results = []
    for pipe in pipes:
        if not pipe.poll(args.max_time + args.warmup + args.duration + 30):
            raise RuntimeError("a worker did not report")
        results.append(pipe.recv())
    for proc in procs:
        proc.join(5)
    counted = sum(r["counted"] for r in results)
    total = sum(r["total"] for r in results)
    errors = sum(r["errors"] for r in results)
    latencies = sorted(x for r in results for x in r["latencies"])
    if args.count:
        elapsed = max(r["finished"] for r in results) - start
    else:
        elapsed = args.duration
    info = next((r["info"] for r in results if r["info"]), None)
    cpu = sum(r["cpu"] for r in results)

    def pct(p):
        if not latencies:
            return None
        return round(1000 * latencies[min(len(latencies) - 1, int(p * len(latencies)))], 3)

    return {
        "mode": args.mode,
        "workers": args.workers,
        "devices": args.devices,
        "seconds": round(elapsed, 3),
        "counted": counted,
        "total": total,
        "rate": counted / elapsed if elapsed > 0 else 0.0,
        "errors": errors,
        "first_error": next((r["first_error"] for r in results if r["first_error"]), None),
        "tls": info[0] if info else None,
        "cipher": info[1] if info else None,
        "group": info[2] if info else None,
        "client_cpu_us": round(1e6 * cpu / total) if total else None,
        "latency_ms": {"p50": pct(0.5), "p90": pct(0.9), "p99": pct(0.99)},
    }


def parseArgs(argv):
    parser = argparse.ArgumentParser(prog="python -m bench.client")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--certs", required=True, help="directory of ca.pem and devNNNNN.pem/.key")
    parser.add_argument("--devices", type=int, default=300, help="device certificates to use")
    parser.add_argument("--mode", choices=["hub", "tls"], default="tls",
                        help="hub: wait for the registered frame; tls: handshake only")
    parser.add_argument("--workers", type=int, default=2, help="client processes")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds not counted")
    parser.add_argument("--duration", type=float, default=6.0, help="seconds measured")
    parser.add_argument("--count", type=int, default=0,
                        help="make this many connections instead of a timed run")
    parser.add_argument("--max-time", type=float, default=60.0,
                        help="upper bound, in seconds, of a --count run")
    parser.add_argument("--max-connections", type=int, default=200_000,
                        help="upper bound on connections per worker")
    parser.add_argument("--timeout", type=float, default=10.0, help="socket timeout")
    parser.add_argument("--tls", choices=["auto", "1.2"], default="auto")
    args = parser.parse_args(argv)
    if args.workers < 1 or args.devices < args.workers:
        parser.error("need at least one worker and one device per worker")
    return args


def main(argv=None) -> None:
    args = parseArgs(argv)
    json.dump(run(args), sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
