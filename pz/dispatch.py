# -*- test-case-name: tests.pz.test_dispatch -*-
"""
Message tables: the one way an end of the zone handles a named message.

A class declares a L{MessageTable} and, beside each handler, the name of the
message it handles and the fields that message carries::

    class Phone:
        messages = MessageTable()

        @messages.handler("message", text=Text(maxLength=MAX_TEXT))
        def _message(self, envelope, text):
            ...

Read from an instance, the table is bound to it (as klein binds the routes
declared on a class to each instance), once: C{self.messages.dispatch(name,
payload, *context)} then

 1. calls the table's one hook (L{MessageTable.before}), which sees every
    message, known or not, and may refuse it by raising a L{ZoneError} (this
    is where an authorisation or policy check goes);
 2. looks the name up, refusing an unknown one (C{UNKNOWN_MESSAGE} unless the
    table says otherwise);
 3. checks the declared fields (C{BAD_ENVELOPE} naming the field unless the
    table says otherwise), so a handler never sees a value of the wrong type;
 4. calls the handler with the context and the checked values as keyword
    arguments.

Tables are never changed after the class is made; a subclass, or an end that
also handles another module's messages, builds its table from others
(C{MessageTable(base, ...)}), so a new message touches only its handler and
its declaration.

Names are usually strings; a table may be keyed by anything hashable (the
portal's is keyed by request type).

A field's declaration checks its JSON type and size only; what a value
means (a PEM that parses, a CRL that verifies) is for the handler, which
refuses it with the code that says what is wrong.
"""

from typing import Any, Callable, Optional

import attrs

from pz.errors import ZoneError

__all__ = [
    "MessageTable",
    "BoundTable",
    "Declared",
    "FieldType",
    "Text",
    "Integer",
    "JSONList",
    "Anything",
    "unknownMessage",
]


class FieldType:
    """
    The type of one declared field.

    @ivar optional: whether the field may be absent (its value is then
        C{None}).
    @ivar expected: what a valid value is, for the refusal's sentence.
    """

    expected = "a value"

    def __init__(self, optional: bool = False) -> None:
        self.optional = optional

    def valid(self, value: Any) -> bool:
        """
        Whether C{value} (present, possibly C{null}) is acceptable.
        """
        raise TypeError(f"{type(self).__name__} declares no check")


class Text(FieldType):
    """
    A JSON string, of at most C{maxLength} characters if that is given.
    """

    def __init__(self, maxLength: Optional[int] = None, optional: bool = False) -> None:
        super().__init__(optional)
        self.maxLength = maxLength
        self.expected = "a string" if maxLength is None else \
            f"a string of at most {maxLength} characters"

    def valid(self, value: Any) -> bool:
        return isinstance(value, str) and (self.maxLength is None or len(value) <= self.maxLength)


class Integer(FieldType):
    """
    A JSON integer (not a boolean).
    """

    expected = "an integer"

    def valid(self, value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)


class JSONList(FieldType):
    """
    A JSON array; its items are the handler's to read.
    """

    expected = "a list"

    def valid(self, value: Any) -> bool:
        return isinstance(value, list)


class Anything(FieldType):
    """
    Any JSON value, checked by the handler that reads it (for fields whose
    refusals carry a code of their own, or that are read leniently).
    """

    expected = "any value"

    def valid(self, value: Any) -> bool:
        return True


def unknownMessage(name: str) -> ZoneError:
    """
    The default refusal of a name no handler is declared for.
    """
    return ZoneError("UNKNOWN_MESSAGE", f"no handler for {name!r}")


@attrs.frozen
class Declared:
    """
    One message's declaration: its name, its fields and its handler.

    @ivar needsOne: field names of which at least one must be present.
    """

    name: str
    fields: tuple
    handler: Callable
    needsOne: tuple = ()

    def check(self, payload: dict, code: str, strict: bool) -> dict:
        """
        The declared fields of C{payload}, checked.

        @param strict: refuse fields that are not declared (the payload's
            C{status}, which names the message, aside).
        @raise ZoneError: C{code}, naming the first field that is wrong.
        """
        values = {}
        for field, kind in self.fields:
            if field in payload:
                value = payload[field]
                if not kind.valid(value):
                    raise ZoneError(code, f"{self.name}: field {field!r} must be {kind.expected}")
                values[field] = value
            elif kind.optional:
                values[field] = None
            else:
                raise ZoneError(code, f"{self.name}: field {field!r} is missing; "
                                      f"it must be {kind.expected}")
        if self.needsOne and not any(field in payload for field in self.needsOne):
            raise ZoneError(code, f"{self.name}: needs one of the fields "
                                  + ", ".join(repr(f) for f in self.needsOne))
        if strict:
            extra = sorted(set(payload) - set(values) - {"status"})
            if extra:
                raise ZoneError(code, f"{self.name}: unexpected field {extra[0]!r}")
        return values


def _given(value, inherited, default):
    if value is not None:
        return value
    return inherited if inherited is not None else default


class MessageTable:
    """
    Message names to handlers, declared on a class; see the module's
    docstring.

    @param bases: tables whose messages (and hook, if this one declares
        none) this one has too; the options not given here are the first
        base's.
    @param unknown: makes the refusal of a name no handler is declared for.
    @param refusal: the code of a refusal for a field that is missing or of
        the wrong type.
    @param strict: refuse fields that are not declared too.
    @param keywords: call handlers with the whole payload as keyword
        arguments (after checking what is declared): for a table of calls
        whose arguments the handler's signature declares, as the admin
        socket's commands do.
    """

    def __init__(self, *bases: "MessageTable",
                 unknown: Optional[Callable[[str], ZoneError]] = None,
                 refusal: Optional[str] = None, strict: Optional[bool] = None,
                 keywords: Optional[bool] = None) -> None:
        self._messages: dict = {}
        self._hook: Optional[str] = None
        for base in bases:
            self._messages.update(base._messages)
            self._hook = self._hook or base._hook
        first = bases[0] if bases else None
        self._unknown = _given(unknown, first and first._unknown, unknownMessage)
        self._refusal = _given(refusal, first and first._refusal, "BAD_ENVELOPE")
        self._strict = _given(strict, first and first._strict, False)
        self._keywords = _given(keywords, first and first._keywords, False)
        self._attribute: Optional[str] = None

    def handler(self, name: str, *, needsOne: tuple = (), **fields: FieldType) -> Callable:
        """
        Declare the decorated function as the handler of message C{name},
        whose fields are C{fields} (name to L{FieldType}).
        """
        for field, kind in fields.items():
            if not isinstance(kind, FieldType):
                raise TypeError(f"field {field!r} of {name!r} is declared with {kind!r}, "
                                f"not a FieldType")

        def declare(function: Callable) -> Callable:
            if name in self._messages and self._messages[name].handler is not function:
                raise ValueError(f"{name!r} is already handled by "
                                 f"{self._messages[name].handler.__qualname__}")
            self._messages[name] = Declared(name, tuple(fields.items()), function, needsOne)
            return function

        return declare

    def before(self, function: Callable) -> Callable:
        """
        Declare the decorated function as the hook run before every handler
        of this table: C{function(self, name, *context)}, raising a
        L{ZoneError} to refuse the message.  It is called by its name, so a
        subclass may override it.
        """
        self._hook = function.__name__
        return function

    def names(self) -> frozenset:
        """
        Every message name this table handles.
        """
        return frozenset(self._messages)

    def declaration(self, name: str) -> Optional[Declared]:
        """
        What is declared for C{name}, or None.
        """
        return self._messages.get(name)

    def __set_name__(self, owner: type, name: str) -> None:
        self._attribute = name

    def __get__(self, instance: Any, owner: type):
        if instance is None:
            return self
        bound = BoundTable(self, instance)
        if self._attribute is not None:
            # Kept on the instance: the next read finds it there first.
            instance.__dict__[self._attribute] = bound
        return bound


class BoundTable:
    """
    A L{MessageTable} bound to one instance: what that instance dispatches
    its messages through.
    """

    __slots__ = ("_table", "_instance", "_messages", "_hook")

    def __init__(self, table: MessageTable, instance: Any) -> None:
        self._table = table
        self._instance = instance
        self._messages = table._messages
        self._hook = table._hook

    def dispatch(self, name: str, payload: dict, *context: Any) -> Any:
        """
        Handle message C{name} with C{payload}: the hook, the lookup, the
        field check, the handler, which is read from the instance by its
        name (so a subclass may override it) and called as
        C{handler(*context, **values)}.

        @return: what the handler returns.
        @raise ZoneError: the hook's, the lookup's, the check's or the
            handler's refusal.
        """
        if self._hook is not None:
            getattr(self._instance, self._hook)(name, *context)
        declared = self._messages.get(name)
        if declared is None:
            raise self._table._unknown(name)
        table = self._table
        if declared.fields or declared.needsOne or table._strict:
            values = declared.check(payload, table._refusal, table._strict)
        else:
            values = None
        # By name, as the hook: a subclass (or a test) may replace it.
        handler = getattr(self._instance, declared.handler.__name__)
        if table._keywords:
            return handler(*context, **payload)
        if values:
            return handler(*context, **values)
        return handler(*context)

    def handles(self, name: Any) -> bool:
        """
        Whether a handler is declared for C{name}.
        """
        return name in self._messages

    def dispatchEnvelope(self, envelope, *context: Any) -> Any:
        """
        Handle a zone envelope: L{dispatch} by its name and payload, with
        the envelope last in the context.
        """
        return self.dispatch(envelope.name, envelope.payload, *context, envelope)
