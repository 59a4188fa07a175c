"""
The command line of C{python -m bench}, which C{python -m bench attack} and
C{python -m bench.portal} share.
"""

import argparse

#: C{--help}'s summary: the first paragraph of C{bench/__main__.py}'s docstring.
DESCRIPTION = (
    "C{make bench} (C{python -m bench}, from the project's top directory): the\n"
    "hub's connection rate and memory per device, next to a bare Twisted\n"
    "mutual-TLS server and C{openssl s_server}, all measured in this one run with\n"
    "the same certificates and the same client program."
)


def parseArgs(argv):
    parser = argparse.ArgumentParser(prog="python -m bench", description=DESCRIPTION)
    parser.add_argument("--repeat", type=int, default=3, help="runs per server (median)")
    parser.add_argument("--warmup", type=float, default=1.0, help="client warm-up per run, s")
    parser.add_argument("--duration", type=float, default=6.0, help="measured seconds per run")
    parser.add_argument("--workers", type=int, default=2, help="client processes")
    parser.add_argument("--rate-devices", type=int, default=300,
                        help="device certificates the rate client cycles through")
    parser.add_argument("--s-time", type=int, default=3, help="seconds per s_time run")
    parser.add_argument("--links", type=int, default=5000, help="idle links for the memory test")
    parser.add_argument("--inflight", type=int, default=100,
                        help="links connecting at once in the memory test")
    parser.add_argument("--ramp-timeout", type=float, default=150.0,
                        help="longest time to open the idle links, s")
    parser.add_argument("--skip-memory", action="store_true", help="no memory test")
    parser.add_argument("--skip-revocation", action="store_true", help="no revocation test")
    parser.add_argument("--revocation-devices", type=int, default=100,
                        help="connected devices that must receive the new CRL")
    parser.add_argument("--skip-portal", action="store_true", help="no Mesh portal test")
    parser.add_argument("--skip-attack", action="store_true", help="no under-attack table")
    parser.add_argument("--skip-sync", action="store_true",
                        help="no synchronisation table (edits of a 10 MB file next to rsync, "
                        "chunking throughput, one preference to 10 devices)")
    parser.add_argument("--skip-calls", action="store_true",
                        help="no calls table (round trip and peak through the hub and a peer "
                        "link, next to a bare TLS echo relay)")
    parser.add_argument("--calls-rate", type=float, default=1000.0,
                        help="calls: calls a second offered in the fixed load")
    parser.add_argument("--calls-seconds", type=float, default=5.0,
                        help="calls: measured seconds of the fixed load")
    parser.add_argument("--calls-warmup", type=float, default=1.0,
                        help="calls: warm-up seconds at the same rate")
    parser.add_argument("--calls-size", type=int, default=200,
                        help="calls: characters of the string each call carries")
    parser.add_argument("--calls-in-flight", type=int, default=64,
                        help="calls: calls kept waiting in the peak load")
    parser.add_argument("--calls-peak-seconds", type=float, default=3.0,
                        help="calls: seconds of the peak load")
    parser.add_argument("--attack-seconds", type=float, default=10.0,
                        help="seconds each attack lasts (under-attack table)")
    parser.add_argument("--recover-seconds", type=float, default=30.0,
                        help="seconds after each attack before RSS is read again")
    parser.add_argument("--slow-connections", type=int, default=1000,
                        help="slow web connections in attack (c)")
    parser.add_argument("--attacks", default="flood,sink,slowweb",
                        help="which attacks to run, comma-separated (flood, sink, slowweb)")
    parser.add_argument("--hub-profile", metavar="FILE", default=None,
                        help="run the attacked hub under cProfile, its stats saved to FILE")
    parser.add_argument("--portal-concurrency", type=int, default=16,
                        help="Mesh portal: requests the client keeps in flight")
    parser.add_argument("--portal-warmup", type=float, default=1.0,
                        help="Mesh portal: client warm-up per run, s")
    parser.add_argument("--portal-duration", type=float, default=5.0,
                        help="Mesh portal: measured seconds per run")
    parser.add_argument("--portal-entries", type=int, default=500,
                        help="Mesh portal: entries published first (timed in-process; "
                        "Get reads them)")
    parser.add_argument("--portal-publishes", type=int, default=5000,
                        help="Mesh portal: entries signed beforehand for the Publish run")
    parser.add_argument("--skip-adminapi", action="store_true",
                        help="no admin API table (GET /api/devices of a large zone, next to a "
                        "bare twisted.web JSON resource)")
    parser.add_argument("--adminapi-devices", type=int, default=5000,
                        help="admin API: devices enrolled in the zone listed")
    parser.add_argument("--adminapi-connections", type=int, default=8,
                        help="admin API: requests in flight, each on its keep-alive connection")
    parser.add_argument("--adminapi-warmup", type=float, default=1.0,
                        help="admin API: warm-up seconds per server")
    parser.add_argument("--adminapi-seconds", type=float, default=5.0,
                        help="admin API: measured seconds per server")
    parser.add_argument("--adminapi-max-requests", type=int, default=20000,
                        help="admin API: most requests of a warm-up, and of a measured run")
    parser.add_argument("--skip-policy", action="store_true",
                        help="no policy decision table (one decision on a 100-rule policy, next "
                        "to a dict lookup)")
    parser.add_argument("--policy-rules", type=int, default=100,
                        help="policy: rules in the policy decided against")
    parser.add_argument("--policy-decisions", type=int, default=20000,
                        help="policy: decisions timed per case")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.duration <= 0 or args.s_time < 1:
        parser.error("--repeat, --duration and --s-time must be positive")
    if (args.portal_concurrency < 1 or args.portal_duration <= 0 or args.portal_warmup < 0
            or args.portal_entries < 1 or args.portal_publishes < 1):
        parser.error("the --portal-* options must be positive")
    if not (0 < args.attack_seconds <= 120 and 0 <= args.recover_seconds <= 120
            and 1 <= args.slow_connections <= 5000):
        parser.error("--attack-seconds must be in (0, 120], --recover-seconds in [0, 120] and "
                     "--slow-connections in [1, 5000]")
    if not (0 < args.calls_rate <= 20000 and 0 < args.calls_seconds <= 60
            and 0 <= args.calls_warmup <= 10 and 1 <= args.calls_size <= 65536
            and 1 <= args.calls_in_flight <= 1000 and 0 < args.calls_peak_seconds <= 60):
        parser.error("--calls-rate must be in (0, 20000], --calls-seconds and "
                     "--calls-peak-seconds in (0, 60], --calls-warmup in [0, 10], "
                     "--calls-size in [1, 65536] and --calls-in-flight in [1, 1000]")
    if not (1 <= args.adminapi_devices <= 100000 and 1 <= args.adminapi_connections <= 256
            and 0 <= args.adminapi_warmup <= 60 and 0 < args.adminapi_seconds <= 120
            and 1 <= args.adminapi_max_requests <= 10 ** 6):
        parser.error("--adminapi-devices must be in [1, 100000], --adminapi-connections in "
                     "[1, 256], --adminapi-warmup in [0, 60], --adminapi-seconds in (0, 120] "
                     "and --adminapi-max-requests in [1, 1000000]")
    if not (2 <= args.policy_rules <= 10000 and 100 <= args.policy_decisions <= 10 ** 6):
        parser.error("--policy-rules must be in [2, 10000] and --policy-decisions in "
                     "[100, 1000000]")
    args.attacks = [a for a in args.attacks.split(",") if a]
    if not args.attacks or not set(args.attacks) <= {"flood", "sink", "slowweb"}:
        parser.error("--attacks takes one or more of flood, sink, slowweb, comma-separated")
    return args
