"""
Tests for L{pz.dispatch}: message tables declared on a class, bound per
instance, with one hook before every handler and declared fields checked
before it runs.
"""

from twisted.trial.unittest import SynchronousTestCase

from pz.dispatch import Anything, Integer, JSONList, MessageTable, Text
from pz.errors import ZoneError
from pz.wire import Envelope


class _End:
    """
    An end with a table: records what its hook and handlers see.
    """

    messages = MessageTable()

    def __init__(self, refuse=()) -> None:
        self.seen = []
        self.refuse = set(refuse)

    @messages.before
    def _hook(self, name, *context):
        self.seen.append(("hook", name))
        if name in self.refuse:
            raise ZoneError("NOT_AUTHORISED", f"{name} is not allowed here")

    @messages.handler("plain")
    def _plain(self, envelope):
        self.seen.append(("plain", envelope.id))
        return "plain done"

    @messages.handler("typed", word=Text(maxLength=5), count=Integer(optional=True),
                      items=JSONList(optional=True), extra=Anything(optional=True))
    def _typed(self, envelope, word, count, items, extra):
        self.seen.append(("typed", word, count, items, extra))

    @messages.handler("lists", needsOne=("a", "b"), a=JSONList(optional=True),
                      b=JSONList(optional=True))
    def _lists(self, envelope, a, b):
        self.seen.append(("lists", a, b))


class _More(_End):
    """
    An end that handles its parent's messages and one more.
    """

    messages = MessageTable(_End.messages)

    @messages.handler("more")
    def _more(self, envelope):
        self.seen.append(("more",))


def _envelope(name, **payload):
    return Envelope("prop", "a", "b", "m1", dict(payload, status=name))


class MessageTableTests(SynchronousTestCase):
    """
    L{MessageTable}: lookup, hook, field checks, binding.
    """

    def test_dispatch(self):
        """
        A declared message reaches its handler, after the hook, and the
        handler's result is returned.
        """
        end = _End()
        self.assertEqual(end.messages.dispatchEnvelope(_envelope("plain")), "plain done")
        self.assertEqual(end.seen, [("hook", "plain"), ("plain", "m1")])

    def test_unknown(self):
        """
        An undeclared name is C{UNKNOWN_MESSAGE} naming it, after the hook
        saw it, and no handler runs.
        """
        end = _End()
        e = self.assertRaises(ZoneError, end.messages.dispatchEnvelope, _envelope("nothing"))
        self.assertEqual(e.code, "UNKNOWN_MESSAGE")
        self.assertIn("'nothing'", e.message)
        self.assertEqual(end.seen, [("hook", "nothing")])

    def test_unknownOwnRefusal(self):
        """
        A table may say how an unknown name is refused.
        """
        class End:
            messages = MessageTable(unknown=lambda name: ZoneError("BAD_REQUEST", name))

        e = self.assertRaises(ZoneError, End().messages.dispatch, "x", {})
        self.assertEqual((e.code, e.message), ("BAD_REQUEST", "x"))

    def test_hookRefuses(self):
        """
        The hook runs before every handler and its refusal stops the
        message: the handler never runs.
        """
        end = _End(refuse={"plain", "typed"})
        for envelope in (_envelope("plain"), _envelope("typed", word="hi")):
            e = self.assertRaises(ZoneError, end.messages.dispatchEnvelope, envelope)
            self.assertEqual(e.code, "NOT_AUTHORISED")
        self.assertEqual(end.seen, [("hook", "plain"), ("hook", "typed")])

    def test_fieldsChecked(self):
        """
        Declared fields reach the handler as keyword arguments; optional
        ones that are absent are None; undeclared ones are not passed.
        """
        end = _End()
        end.messages.dispatchEnvelope(_envelope("typed", word="hi", items=[1], other=3))
        end.messages.dispatchEnvelope(_envelope("typed", word="", count=7, extra={"x": 1}))
        self.assertEqual([s for s in end.seen if s[0] == "typed"],
                         [("typed", "hi", None, [1], None), ("typed", "", 7, None, {"x": 1})])

    def test_badFields(self):
        """
        A missing or mistyped field is C{BAD_ENVELOPE} naming the message
        and the field, before the handler runs.
        """
        end = _End()
        cases = [
            ({}, "'word'"),
            ({"word": 5}, "'word'"),
            ({"word": None}, "'word'"),
            ({"word": "toolong"}, "at most 5"),
            ({"word": "ok", "count": "1"}, "'count'"),
            ({"word": "ok", "count": True}, "'count'"),
            ({"word": "ok", "count": None}, "'count'"),
            ({"word": "ok", "items": {}}, "'items'"),
        ]
        for payload, named in cases:
            e = self.assertRaises(ZoneError, end.messages.dispatchEnvelope,
                                  _envelope("typed", **payload))
            self.assertEqual(e.code, "BAD_ENVELOPE")
            self.assertIn("typed", e.message)
            self.assertIn(named, e.message)
        self.assertEqual([s for s in end.seen if s[0] == "typed"], [])

    def test_needsOne(self):
        """
        A message may need one of several optional fields.
        """
        end = _End()
        e = self.assertRaises(ZoneError, end.messages.dispatchEnvelope, _envelope("lists"))
        self.assertEqual(e.code, "BAD_ENVELOPE")
        self.assertIn("'a', 'b'", e.message)
        end.messages.dispatchEnvelope(_envelope("lists", b=[]))
        self.assertEqual(end.seen[-1], ("lists", None, []))

    def test_strictAndKeywords(self):
        """
        A strict table refuses undeclared fields with its refusal code; a
        keywords table passes the whole payload as keyword arguments.
        """
        class Commands:
            commands = MessageTable(refusal="BAD_REQUEST", strict=True, keywords=True)

            @commands.handler("revoke", device=Anything())
            def revoke(self, device):
                return device

        commands = Commands().commands
        self.assertEqual(commands.dispatch("revoke", {"device": "d"}), "d")
        for args in ({}, {"device": "d", "other": 1}):
            e = self.assertRaises(ZoneError, commands.dispatch, "revoke", args)
            self.assertEqual(e.code, "BAD_REQUEST")

    def test_boundPerInstance(self):
        """
        Read from an instance, the table is bound to that instance, once.
        """
        one, two = _End(), _End()
        self.assertIs(one.messages, one.messages)
        self.assertIsNot(one.messages, two.messages)
        one.messages.dispatchEnvelope(_envelope("plain"))
        self.assertEqual(two.seen, [])
        self.assertIsInstance(_End.messages, MessageTable)

    def test_extended(self):
        """
        A table built on another handles both tables' messages and keeps
        the other's hook; the other table is unchanged.
        """
        more = _More()
        more.messages.dispatchEnvelope(_envelope("more"))
        more.messages.dispatchEnvelope(_envelope("plain"))
        self.assertEqual(more.seen, [("hook", "more"), ("more",), ("hook", "plain"),
                                     ("plain", "m1")])
        self.assertEqual(_More.messages.names(), _End.messages.names() | {"more"})
        self.assertNotIn("more", _End.messages.names())

    def test_overriddenByName(self):
        """
        Handlers and the hook are found on the instance by name, so a
        subclass may replace one without declaring it again.
        """
        class Quiet(_End):
            def _plain(self, envelope):
                return "quiet"

            def _hook(self, name, *context):
                self.seen.append(("quiet hook", name))

        end = Quiet()
        self.assertEqual(end.messages.dispatchEnvelope(_envelope("plain")), "quiet")
        self.assertEqual(end.seen, [("quiet hook", "plain")])

    def test_badDeclarations(self):
        """
        A field declared with something that is not a field type, or a
        name declared twice, fails when the class is made.
        """
        table = MessageTable()
        self.assertRaises(TypeError, table.handler, "x", field=str)
        table.handler("x")(lambda self, envelope: None)
        self.assertRaises(ValueError, table.handler("x"), lambda self, envelope: None)

    def test_keyedByType(self):
        """
        A table may be keyed by anything hashable, such as a request type,
        and says which keys it handles.
        """
        class Service:
            requests = MessageTable()

            @requests.handler(int)
            def _number(self, request):
                return request + 1

        requests = Service().requests
        self.assertTrue(requests.handles(int))
        self.assertFalse(requests.handles(str))
        self.assertEqual(requests.dispatch(int, {}, 41), 42)
