"""Name substring search that stays fast at a million customers.

On PostgreSQL a GIN index over the name's characters and character pairs (``name_grams``, see
migration 0003) finds candidates, and ``icontains`` rechecks them; a trigram index could not serve
two-character Chinese names such as 王伟. Elsewhere (SQLite in the quick start) a plain scan.
"""

from __future__ import annotations

import re

from django.db import connection
from django.db.models import Q

from customers.models import name_grams

GRAMS_SQL = "string_to_array(customers_customer.name_grams, ' ') @> %s::text[]"


def query_grams(text: str) -> list[str]:
    text = re.sub(r"\s+", "", text.lower())
    if len(text) <= 1:
        return [text] if text else []
    return [gram for gram in name_grams(text).split(" ") if len(gram) == 2]


def filter_name_substring(queryset, text: str):
    text = text.strip()
    if not text:
        return queryset
    matches = Q(name__icontains=text) | Q(company__icontains=text)
    if connection.vendor == "postgresql":
        grams = query_grams(text)
        if grams:
            queryset = queryset.extra(where=[GRAMS_SQL], params=[grams])  # noqa: S610 - parameterised
    return queryset.filter(matches)
