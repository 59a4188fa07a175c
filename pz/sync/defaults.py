# -*- test-case-name: tests.pz.sync.test_items -*-
"""
The items a new zone starts with.

The hub writes them on its first start and a device on its enrolment, so
every side holds the same folder layout and the same starting content, as
the webinos Synchronisation specification asks ("the directory structure
should be created by default when the PZH or the PZP are created the first
time").  JSON items are written in the form the JSON chunker joins them
to (two-space indent, a final newline), so a fresh item and one that came
over the wire are byte-identical.
"""

import json

__all__ = ["DEFAULTS", "PREFERENCES", "USER_DETAILS", "POLICY"]

#: The user preferences of the webinos Synchronisation specification
#: ("User preferences"), with its defaults.  C{synchronise} names every
#: category an item may belong to; C{"user data"} is the specification's
#: own key for the C{userdata} category.
PREFERENCES = {
    "ports": {
        "provider": 8000,
        "provider_webServer": 9000,
        "pzp_webSocket": 8081,
        "pzp_web_webSocket": 8080,
        "pzp_tlsServer": 8040,
        "pzp_zeroConf": 4321,
    },
    "defaultServices": ["context", "events", "get42"],
    "certConfiguration": {
        "country": "UK",
        "state": "MX",
        "city": "London",
        "orgname": "Webinos",
        "orgunit": "WP4",
        "cn": "",
        "email": "hello@webinos.org",
    },
    "synchronise": {
        "certificates": "yes",
        "crl": "yes",
        "policies": "yes",
        "preferences": "yes",
        "userdetails": "yes",
        "servicecache": "yes",
        "context": "yes",
        "user data": "yes",
        "friends": "yes",
        "application_manifest": "yes",
    },
    "peer_connection": "yes",
    "slave": "no",
    "apply_acrossPZ": "yes",
    "only_device": "no",
    "service_cache": "yes",
}

#: The user details of the webinos Synchronisation specification ("User
#: details"), empty until the person fills them in.
USER_DETAILS = {
    "name": "",
    "email": "",
    "image": "",
    "country": "",
    "serverName": "",
    "authenticationProvider": "",
    "social_contacts": "",
}

#: The default policy: one XACML 3.0 PolicySet holding one Policy whose one
#: Rule permits every request of the zone's own devices.  A zone starts open
#: between its own devices, as before synchronisation existed, and closed to
#: other zones: a friend zone's devices get in only where a rule the person
#: adds permits them.  The set combines its policies first-applicable, so the
#: rules C{pzctl policy add} puts in a policy of their own before this one
#: (L{pz.policy.edit}) decide before it.
POLICY = """\
<?xml version="1.0" encoding="UTF-8"?>
<PolicySet xmlns="urn:oasis:names:tc:xacml:3.0:core:schema:wd-17" \
PolicySetId="urn:pz:policyset:zone" Version="1.0" \
PolicyCombiningAlgId="urn:oasis:names:tc:xacml:1.0:policy-combining-algorithm:first-applicable">
  <Description>The zone's policies: by default every request of the zone's own devices is \
permitted, and nothing of another zone's.</Description>
  <Target/>
  <Policy PolicyId="urn:pz:policy:default" Version="1.0" \
RuleCombiningAlgId="urn:oasis:names:tc:xacml:3.0:rule-combining-algorithm:deny-overrides">
    <Target/>
    <Rule RuleId="urn:pz:rule:permit-own-zone" Effect="Permit">
      <Description>Permit every request of this zone's own devices.</Description>
      <Target>
        <AnyOf><AllOf>
          <Match MatchId="urn:oasis:names:tc:xacml:1.0:function:string-equal">
            <AttributeValue>own</AttributeValue>
            <AttributeDesignator AttributeId="urn:pz:subject:relation"/>
          </Match>
        </AllOf></AnyOf>
      </Target>
    </Rule>
  </Policy>
</PolicySet>
"""


def _json(value: dict) -> bytes:
    return (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


#: Item path -> content, for L{pz.sync.items.ItemTree.create}.
DEFAULTS = {
    "preferences.json": _json(PREFERENCES),
    "userdetails.json": _json(USER_DETAILS),
    "servicecache.json": _json({}),
    "policies/policy.xml": POLICY.encode("utf-8"),
}
