"""Hypothesis strategies for what people (and attackers) type into CIMS forms.

Values are strings as a browser posts them. Surrogates are left out: a browser cannot encode
them in a form, and Django's test client cannot either. Everything else is fair: NUL and other
control characters, very long strings, right-to-left text, emoji, CJK and full-width characters,
markup and script payloads, numbers and dates at and past the edges, ids that do not exist.
"""

from __future__ import annotations

from hypothesis import strategies as st

# Every payload carries one of these markers; a response that contains a marker verbatim has
# rendered user input as HTML instead of text. Nothing in our templates contains them.
MARKERS = ("<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "<svg/onload=alert(1)>")
HTML_PAYLOADS = (
    MARKERS[0],
    '"><img src=x onerror=alert(1)>',
    "'><svg/onload=alert(1)>",
    "</textarea><script>alert(1)</script>",
    "</title><script>alert(1)</script>",
    "javascript:alert(1)//<script>alert(1)</script>",
    "{{ 7|add:7 }}<script>alert(1)</script>{% now 'Y' %}",
)

# Characters of every kind except surrogates (category Cs), NUL and controls included.
_chars = st.characters(exclude_categories=("Cs",))
_samples = st.sampled_from(
    [
        "",
        " ",
        "\x00",
        "a\x00b",
        "\t\r\n",
        "\u202eevil\u202c",  # right-to-left override
        "مرحبا بالعالم",
        "שלום",
        "😀👍🏽👨‍👩‍👧",
        "张伟",
        "Ｚｈａｎｇ　Ｗｅｉ",  # full width
        "𠀀𪚥",  # outside the BMP
        "\ufeff",
        "\u200b",
        "Robert'); DROP TABLE customers_customer;--",
        "%s %(name)s {0} {{ x }}",
        "../../etc/passwd",
    ]
)

plain_text = st.text(_chars, max_size=60)
long_text = st.builds(lambda ch, n: ch * n, _chars, st.integers(min_value=100, max_value=5000))
html = st.builds(
    lambda before, payload, after: before + payload + after, plain_text, st.sampled_from(HTML_PAYLOADS), plain_text
)


# Text a person could well type: no control characters, so a form may accept it and save it.
printable = st.text(st.characters(exclude_categories=("Cs", "Cc", "Co", "Cn")), min_size=1, max_size=40)
readable_html = st.builds(
    lambda before, payload, after: before + payload + after,
    st.one_of(st.just(""), printable),
    st.sampled_from(HTML_PAYLOADS),
    st.one_of(st.just(""), printable),
)


def readable() -> st.SearchStrategy[str]:
    """A value a free-text field accepts: often with a script payload, so that it is saved and shown."""
    return st.one_of(readable_html, printable)


def text() -> st.SearchStrategy[str]:
    """Any text a field might receive."""
    return st.one_of(plain_text, _samples, html, long_text)


def numbers() -> st.SearchStrategy[str]:
    edges = st.sampled_from(
        [
            "0",
            "-0",
            "-1",
            "1",
            "5",
            "6",
            "32767",
            "32768",
            "2147483647",
            "2147483648",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775809",
            "1e309",
            "NaN",
            "Infinity",
            "-inf",
            "1.5",
            "0.001",
            "１２",  # full-width digits
            "١٢",  # Arabic-Indic digits
            "99999999999999999999.99",
            "1_000",
            "0x10",
        ]
    )
    return st.one_of(edges, st.integers().map(str), st.decimals(allow_nan=True, allow_infinity=True).map(str), text())


def dates() -> st.SearchStrategy[str]:
    odd = st.sampled_from(
        [
            "2026-02-30",
            "2026-13-01",
            "0000-00-00",
            "0001-01-01",
            "1899-12-31",
            "9999-12-31",
            "10000-01-01",
            "2026/1/1",
            "2026年1月1日",
            "1/2/2026",
            "2026-01-01T25:61",
            "2026-01-01T00:00",
            "2026-01-01 00:00:00+99:00",
            "yesterday",
            "-2026-01-01",
        ]
    )
    return st.one_of(odd, st.dates().map(str), st.datetimes().map(lambda d: d.strftime("%Y-%m-%dT%H:%M")), text())


def ids(*known: object) -> st.SearchStrategy[str]:
    """An id field: ids that exist (``known``, e.g. another customer's contact), that do not, and junk."""
    values = [str(value) for value in known] + ["", "0", "-1", "999999999", "9223372036854775808", "1.0", "abc"]
    return st.one_of(st.sampled_from(values), text())


def choice(*values: str) -> st.SearchStrategy[str]:
    """A choice field: mostly a valid choice, sometimes anything."""
    return st.one_of(st.sampled_from(values), st.sampled_from(values), text())


def optional(strategy: st.SearchStrategy[str]) -> st.SearchStrategy[str | None]:
    """None means the browser left the field out of the POST."""
    return st.one_of(st.none(), strategy)


def form(**fields: st.SearchStrategy) -> st.SearchStrategy[dict[str, str]]:
    """A POST body: each field its strategy; fields whose value is None are left out."""
    return st.fixed_dictionaries(fields).map(lambda data: {k: v for k, v in data.items() if v is not None})


@st.composite
def mutated(draw, valid: dict[str, st.SearchStrategy], fuzz: dict[str, st.SearchStrategy], most: int = 3):
    """A POST body that is valid but for a few fields: each field of ``valid`` takes a valid value,
    then up to ``most`` fields take a value from ``fuzz`` (None: left out of the POST). Fuzzing every
    field at once would almost never get past validation, and what is saved is what must be escaped."""
    data = draw(st.fixed_dictionaries(valid))
    names = draw(st.lists(st.sampled_from(sorted(fuzz)), unique=True, max_size=most))
    for name in names:
        data[name] = draw(st.one_of(st.none(), fuzz[name]))
    return {name: value for name, value in data.items() if value is not None}


def file_names() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(
            [
                "客户.csv",
                "customers.xlsx",
                "a.xls",
                "noext",
                ".csv",
                "x" * 300 + ".csv",
                "../../evil.csv",
                "<script>alert(1)</script>.csv",
                "a\x00b.csv",
                "file.csv.exe",
                "名单 (1).CSV",
            ]
        ),
        st.text(_chars, min_size=1, max_size=40).map(lambda name: name + ".csv"),
    )


def csv_cell() -> st.SearchStrategy[str]:
    return st.one_of(text(), numbers(), dates(), st.sampled_from(["=1+1", "@SUM(A1)", "+86 138 1234 5678", '"', '""x']))
