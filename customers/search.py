"""Name substring search that stays fast at a million customers.

On PostgreSQL a GIN index over the name's characters and character pairs (``name_grams``, see
migration 0002) finds candidates, and an upper-cased substring test (what ``icontains`` does)
rechecks them; a trigram index could not serve two-character Chinese names such as 王伟. Elsewhere
(SQLite in the quick start) a plain ``icontains`` scan. Measurements: docs/performance.md.
"""

from __future__ import annotations

import re

from django.db import connection
from django.db.models import F, Func, Q, TextField, Value
from django.db.models.functions import StrIndex, Upper
from django.db.models.lookups import GreaterThan


def query_grams(text: str) -> list[str]:
    """The grams a matching name must contain: a cover of the text by non-overlapping pairs.

    ``科技有限`` → 科技, 有限 (an odd length adds the last pair: ``李建华`` → 李建, 建华). Every pair
    of the text would select the same rows, but overlapping pairs are so correlated (技有 comes
    with 科技 and 有限) that PostgreSQL, multiplying their frequencies, expects a common phrase
    to be rare: it then fetches every match through the index and sorts them (1.6 s for 50,000
    companies) instead of reading the newest rows until a page is full (1 ms).
    """
    text = re.sub(r"\s+", "", text.lower())
    if len(text) <= 1:
        return [text] if text else []
    pairs = [text[i : i + 2] for i in range(0, len(text) - 1, 2)]
    if len(text) % 2:
        pairs.append(text[-2:])
    return list(dict.fromkeys(pairs))


def filter_name_substring(queryset, text: str):
    text = text.strip()
    if not text:
        return queryset
    matches = Q(name__icontains=text) | Q(company__icontains=text)
    if connection.vendor == "postgresql":
        # The same test as icontains (upper-cased substring), written so that PostgreSQL does not
        # take it for a rare one: for LIKE on an expression it assumes 0.5 % of the rows match, and
        # multiplied with the index condition it would expect six rows where 50,000 match —
        # choosing a plan that joins and sorts all of them (0.5 s) over one that reads the newest
        # rows until the page is full (2 ms). For strpos() > 0 it assumes a third.
        needle = Upper(Value(text))
        matches = Q(GreaterThan(StrIndex(Upper("name"), needle), 0)) | Q(
            GreaterThan(StrIndex(Upper("company"), needle), 0)
        )
        grams = query_grams(text)
        if grams:
            # An expression, not extra(where=...): Django qualifies the column with whatever alias
            # the table has, so the queryset also works as a subquery (where it is "U0"). It is
            # the expression of the index: string_to_array(name_grams, ' ').
            from django.contrib.postgres.fields import ArrayField

            name_gram_list = Func(
                F("name_grams"), Value(" "), function="string_to_array", output_field=ArrayField(TextField())
            )
            queryset = queryset.alias(name_gram_list=name_gram_list).filter(name_gram_list__contains=grams)
    return queryset.filter(matches)
