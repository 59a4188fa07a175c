# -*- test-case-name: tests.pzp.test_policycommands -*-
"""
C{pzctl} verbs for the zone's policy and its prompts.

C{policy show|add|remove} edit C{policies/policy.xml} among the items of a
device (C{--pzp-dir DIR}) or of the hub (C{--hub-dir DIR}) without
writing XML (L{pz.policy.edit}).  They write the item itself, with an
atomic replace, whether the daemon runs or not: the daemon's periodic scan
finds the change and syncs it like any other edit, and a device puts it in
force at its next call (L{pz.policy.item.ItemPolicy}).  Going through the
file rather than the admin socket keeps one way of editing for both ends
and for a stopped daemon, and a hand edit is no different.

C{prompts} and C{answer} ask the running device through its admin
socket: the prompts waiting, and the answer to one of them.
"""

import json
import os

from pz.cli.verb import Verb, needs, printRows
from pz.errors import ZoneError

__all__ = ["policy", "prompts", "answer"]

#: L{pz.policy.edit.EFFECTS}' names, spelled out: importing the policy
#: core (~180 ms) at every pzctl start, whatever the verb, would cost more
#: than the copy; a test keeps the two the same.
_EFFECTS = ("permit", "deny", "prompt-oneshot", "prompt-session", "prompt-blanket")


def _items(args):
    """
    The items folder of the device or hub the options name.
    """
    from pz.sync.items import ItemTree

    if args.pzp_dir and args.hub_dir:
        raise ZoneError("BAD_REQUEST", "give --pzp-dir or --hub-dir, not both")
    where = args.pzp_dir or args.hub_dir or needs(args, "pzp_dir", "--pzp-dir")
    tree = ItemTree(os.path.join(os.path.abspath(where), "zone"))
    if not os.path.isdir(tree.root):
        raise ZoneError("BAD_REQUEST", f"{where} holds no zone items: is it the data directory "
                                       "of an enrolled device or of a hub?")
    return tree


def _policy(args):
    """
    The policy item of the device or hub the options name, read and
    written as the admin page does (L{pz.policy.itemfile.PolicyFile}).
    """
    from pz.policy.itemfile import PolicyFile

    return PolicyFile(_items(args))


def _show(args) -> None:
    printRows(args, _policy(args).rules(), "no rules", lambda r: (
        f"{r['id']}  {r['effect']}  subject={r['subject'] or '*'}  "
        + (f"item={r['item']}  " if r["item"] else
           f"service={r['service'] or '*'}  method={r['method'] or '*'}  ")
        + f"(in {r['policy']})"
        + ("" if r["simple"] else "  and more: see the XML")))


def _add(args) -> None:
    ruleId = _policy(args).add(args.effect, subject=args.subject, service=args.service,
                               method=args.method, first=args.first, item=args.item)
    print(json.dumps({"id": ruleId}) if args.json else ruleId)


def _remove(args) -> None:
    _policy(args).remove(args.rule)
    print(json.dumps({"removed": args.rule}) if args.json else f"removed {args.rule}")


def _policyArguments(parser, parents) -> None:
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True,
                                  help="what to do with the policy")
    show = verbs.add_parser("show", help="list the policy's rules", parents=parents,
                            description="List every rule of the policy: id, effect, and the "
                                        "subject, service and method it applies to (* for any).")
    show.set_defaults(func=_show)
    add = verbs.add_parser("add", help="add a rule; prints its id", parents=parents,
                           description="Add a rule to the zone's policy (in the policy "
                                       "urn:pz:policy:edits, which comes first) and print its id.")
    add.add_argument("--effect", required=True, choices=_EFFECTS,
                     help="permit, deny, or ask first: once per call, once per session of "
                          "the device, or once for good")
    add.add_argument("--subject", metavar="ID_OR_ZONE",
                     help="the calling device (ZONE/NAME) or zone (user@host), own (this "
                          "zone's devices) or friend (every friend zone's); default: any")
    add.add_argument("--service", metavar="NAME", help="the service; default: any")
    add.add_argument("--method", metavar="NAME", help="the method; default: any")
    add.add_argument("--item", metavar="PATH",
                     help="instead of calls: sharing this item of the zone (userdetails.json; "
                          "a folder ends in /: userdata/photos/) with the subject's zone")
    add.add_argument("--first", action="store_true",
                     help="put the rule before the other added rules")
    add.set_defaults(func=_add)
    remove = verbs.add_parser("remove", help="remove a rule by its id", parents=parents,
                              description="Remove the rule RULE_ID (policy show lists them).")
    remove.add_argument("rule", metavar="RULE_ID", help="the rule's id (policy show lists them)")
    remove.set_defaults(func=_remove)


def _prompts(args) -> None:
    from pz.admin import adminCall

    printRows(args, adminCall(needs(args, "pzp_dir", "--pzp-dir"), "prompts")["prompts"],
              "no prompts waiting", lambda p: (
                  f"{p['id']}  {p['subject']} ({p['relation']}) calls "
                  f"{p['service']}.{p['method']}  [{p['prompt']}, rule {p['rule']}]  "
                  f"waiting {p['waiting']:g} of {p['timeout']:g} s"))


def _answer(args) -> None:
    from pz.admin import adminCall

    request = {"id": args.id, "permit": args.answer == "permit"}
    if args.session:
        request["scope"] = "session"
    elif args.always:
        request["scope"] = "always"
    result = adminCall(needs(args, "pzp_dir", "--pzp-dir"), "answer", request)
    if args.json:
        print(json.dumps(result))
        return
    print(f"{'permitted' if result['permit'] else 'denied'} {result['subject']} "
          f"{result['service']}.{result['method']} ({result['scope']})")


def _answerArguments(parser, parents) -> None:
    parser.add_argument("id", metavar="ID", help="the prompt's id (pzctl prompts lists them)")
    parser.add_argument("answer", choices=("permit", "deny"), help="let the call go ahead or not")
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("--session", action="store_true",
                       help="the same answer for that device, service and method until this "
                            "device stops")
    scope.add_argument("--always", action="store_true",
                       help="keep the answer as a rule in the zone's policy")


policy = Verb(
    "policy", "show or edit the zone's policy (device or hub)",
    "Show, add or remove rules of the zone's policy, items/policies/policy.xml of a device "
    "(--pzp-dir) or of the hub (--hub-dir); the change syncs to the zone like any edit and "
    "a device enforces it from its next call, without a restart.", None, _policyArguments,
)

prompts = Verb(
    "prompts", "calls waiting for the person's answer (device)",
    "List the prompts waiting on the device: who calls which service and method, under "
    "which rule, and how long it has waited; an unanswered prompt is denied after "
    "twistd pzp's --prompt-timeout.", _prompts,
)

answer = Verb(
    "answer", "answer a waiting prompt (device)",
    "Permit or deny the call prompt ID waits on; by default the answer holds as the rule "
    "says (once, for the session, or always), --session keeps it until the device stops, "
    "--always writes it into the policy as a rule.", _answer, _answerArguments,
)
