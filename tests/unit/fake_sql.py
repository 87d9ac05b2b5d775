"""A stand-in for psycopg2.sql / psycopg.sql in unit tests: composes SQL text, renders identifiers quoted, and never
sees a value (values go as parameters). Shared by the tests of the modules that compose SQL."""

from __future__ import annotations


class Composed(object):
    def __init__(self, text):
        self.text = text

    def __add__(self, other):
        return Composed(self.text + other.text)


class FakeSQL(object):
    """Stands in for psycopg2.sql: renders identifiers quoted, and never sees a value."""

    class SQL(Composed):
        def format(self, *args, **kwargs):
            return Composed(self.text.format(*[a.text for a in args], **dict((k, v.text) for k, v in kwargs.items())))

        def join(self, parts):
            return Composed(self.text.join(p.text for p in parts))

    class Identifier(Composed):
        def __init__(self, *parts):
            super().__init__(".".join('"%s"' % p.replace('"', '""') for p in parts))
