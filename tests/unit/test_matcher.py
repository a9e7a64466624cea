import pytest

from baton.matcher import Matcher, matches_all, parse_matcher, parse_matchers

LABELS = {"severity": "critical", "service": "db", "env": "prod", "msg": 'say "hi"',
          "multi": "a\nb", "path": "C:\\temp"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('severity="critical"', True),
        ('severity="crit"', False),
        ('severity!="critical"', False),
        ('severity!="warning"', True),
        ('service=~"db|cache"', True),
        ('service=~"d"', False),          # anchored: no partial match
        ('service=~"d.*"', True),
        ('service=~"b"', False),
        ('service!~"db|cache"', False),
        ('service!~"web.*"', True),
        ('team=""', True),                # a missing label equals ""
        ('team!=""', False),
        ('team=~".*"', True),
        ('team=~".+"', False),
        ('team!~".+"', True),
        ('env=~"prod|staging"', True),
        ('env=~"PROD"', False),           # case-sensitive like Alertmanager
        ('env=~"(?i)PROD"', True),        # leading flags, as Go's regexp allows
        ('env=~"(?i)PR|x"', False),       # ...and they stay inside the anchors
        ('multi=~"a.b"', False),          # "." does not match a newline
        ('multi=~"a\\nb"', True),
        ("severity=critical", True),      # unquoted value
        ("severity = critical", True),
        ("  severity=~crit.*  ", True),
        ('msg="say \\"hi\\""', True),      # escaped quotes inside the value
        ('path="C:\\\\temp"', True),       # escaped backslash
        ('path=~"C:\\\\\\\\temp"', True),    # regex needs a doubled backslash
        ('service=~"\\w+"', True),        # spurious escape kept for the regex engine
        ('"service"="db"', True),         # quoted label name
        ("service.name=x", False),        # names may contain dots without quotes
    ],
)
def test_match_table(text: str, expected: bool) -> None:
    assert parse_matcher(text).matches(LABELS) is expected


def test_trailing_newline_is_not_a_match() -> None:
    # Python's "$" would match before a final newline; Alertmanager's anchoring does not.
    assert not parse_matcher('x=~"a"').matches({"x": "a\n"})


@pytest.mark.parametrize(
    ("text", "name", "op", "value"),
    [
        ('a="b"', "a", "=", "b"),
        ('a!="b"', "a", "!=", "b"),
        ('a=~"b"', "a", "=~", "b"),
        ('a!~"b"', "a", "!~", "b"),
        ("a=~b|c", "a", "=~", "b|c"),
        ('a="x\\"y"', "a", "=", 'x"y'),
        ('a="x\\ny"', "a", "=", "x\ny"),
        ('a="\\d"', "a", "=", "\\d"),
        ('a=""', "a", "=", ""),
        ("a=", "a", "=", ""),
        ('a="=~,{}"', "a", "=", "=~,{}"),
        ('"my label"="v"', "my label", "=", "v"),
        ("foo_bar:baz=x y", "foo_bar:baz", "=", "x y"),
    ],
)
def test_parse(text: str, name: str, op: str, value: str) -> None:
    assert parse_matcher(text) == Matcher(name, op, value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("severity", "invalid matcher 'severity': expected an operator (=, !=, =~, !~) "
                     "after 'severity'"),
        ('="x"', "invalid matcher '=\"x\"': missing label name before the operator"),
        ("", "invalid matcher '': expected name, operator (=, !=, =~, !~), value"),
        ('a="b', "invalid matcher 'a=\"b': unterminated quoted string"),
        ('a="b"c', "invalid matcher 'a=\"b\"c': unexpected text after the quoted value: 'c'"),
        ('a=b"c', "invalid matcher 'a=b\"c': unescaped double quote in an unquoted value"),
        # RE2's wording (Python's ``re`` said "unterminated subpattern at position 0").
        ('a=~"(x"', "invalid matcher 'a=~\"(x\"': invalid regular expression '(x' for label "
                    "'a': missing ): (x (RE2 syntax"),
        ('a!~"[z-a]"', "invalid matcher 'a!~\"[z-a]\"': invalid regular expression '[z-a]'"),
        ("a<b", "invalid matcher 'a<b': expected an operator"),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_matcher(text)
    assert str(info.value).startswith(message)


def test_equals_sign_in_unquoted_value_is_kept() -> None:
    # As in Alertmanager's classic parser: after the operator the rest is the value.
    assert parse_matcher("a==b") == Matcher("a", "=", "=b")


def test_constructor_validates() -> None:
    with pytest.raises(ValueError, match="unknown matcher operator '=='"):
        Matcher("a", "==", "b")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="label name must not be empty"):
        Matcher("", "=", "b")
    with pytest.raises(ValueError, match="invalid regular expression"):
        Matcher("a", "=~", "*")


def test_str_round_trips() -> None:
    for m in (Matcher("a", "=", 'x"y\\z\n'), Matcher("my label", "!~", "a|b"),
              Matcher("a", "=~", "\\d+")):
        assert parse_matcher(str(m)) == m
    assert str(Matcher("severity", "=", "critical")) == 'severity="critical"'


def test_parse_matchers_braces_and_lists() -> None:
    expected = [Matcher("a", "=", "b"), Matcher("c", "=~", "d|e,f"), Matcher("g", "!=", "h")]
    assert parse_matchers('{a="b", c=~"d|e,f", g!=h}') == expected
    assert parse_matchers('a="b",c=~"d|e,f",g!=h') == expected
    assert parse_matchers('{a="b", c=~"d|e,f", g!=h,}') == expected
    assert parse_matchers('{a="x\\",y"}') == [Matcher("a", "=", 'x",y')]
    assert parse_matchers("{}") == []
    assert parse_matchers("  ") == []
    assert parse_matchers('severity="critical"') == [Matcher("severity", "=", "critical")]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{a="b"', "invalid matchers '{a=\"b\"': unbalanced braces"),
        ('{a="b}', "invalid matchers '{a=\"b}': unterminated quoted string"),
        ('{a="b",,c="d"}', "invalid matcher '': expected name"),
        ('{a="b", c}', "invalid matcher ' c': expected an operator"),
    ],
)
def test_parse_matchers_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_matchers(text)
    assert str(info.value).startswith(message)


def test_matches_all() -> None:
    ms = parse_matchers('{severity="critical", service=~"db|web"}')
    assert matches_all(ms, LABELS)
    assert not matches_all(ms, {**LABELS, "service": "cache"})
    assert matches_all([], {})
