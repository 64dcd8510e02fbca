#!/usr/bin/env python3
"""Check a CIMS year-end lottery draw yourself: recompute the winners from what was published.

    python3 verify_lottery.py published.json

Needs nothing but Python 3.8 or newer (standard library only). It reads the published JSON (and the
entry list file it names, if the entries are not inline), checks the entry count, the SHA-256 of the
canonical entry list, the commitment to the server secret, then redoes the draw and compares the
winners. It prints MATCH and exits 0, or MISMATCH with the reasons and exits 1 (also when the
published file is unreadable or malformed; 2 only for a wrong command line).

The algorithm, "cims-lottery-v1", is specified in docs/lottery.md. This file implements it on its
own, on purpose, so that checking a draw does not mean trusting CIMS's code.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import sys
from bisect import bisect_right

ALGORITHM = "cims-lottery-v1"
COMMITMENT_PREFIX = b"cims-lottery-v1/commitment\x00"
SEED_PREFIX = b"cims-lottery-v1/seed\x00"
TWO_64 = 2**64
ENTRY_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
HEX64 = re.compile(r"[0-9a-f]{64}")


class Invalid(Exception):
    pass


def canonical_list(entries):
    """entries: (entry_id, weight) pairs -> the canonical list bytes, sorted by entry id."""
    entries = sorted(entries)
    seen = set()
    total = 0
    for entry_id, weight in entries:
        if not isinstance(entry_id, str) or not ENTRY_ID.fullmatch(entry_id):
            raise Invalid(f"bad entry id {entry_id!r}")
        if entry_id in seen:
            raise Invalid(f"entry id {entry_id} appears more than once")
        if type(weight) is not int or weight < 1:
            raise Invalid(f"entry {entry_id} has bad weight {weight!r}")
        seen.add(entry_id)
        total += weight
    if total > TWO_64:
        raise Invalid("total weight exceeds 2**64")
    return "".join(f"{entry_id}\t{weight}\n" for entry_id, weight in entries).encode("utf-8")


def read_list(data):
    """Canonical list bytes -> (entry_id, weight) pairs; the bytes must already be canonical."""
    text = data.decode("utf-8")
    if text and not text.endswith("\n"):
        raise Invalid("the entry list must end with a newline")
    entries = []
    for number, line in enumerate(text.split("\n")[:-1], start=1):
        parts = line.split("\t")
        if len(parts) != 2 or not re.fullmatch(r"[1-9][0-9]*", parts[1]):
            raise Invalid(f"entry list line {number} is not 'entry_id<TAB>weight'")
        entries.append((parts[0], int(parts[1])))
    if canonical_list(entries) != data:
        raise Invalid("the entry list file is not in canonical form (sorted, unique, one entry a line)")
    return entries


def commitment(secret):
    return hashlib.sha256(COMMITMENT_PREFIX + secret).hexdigest()


def seed(secret, list_hash_hex, public_value):
    public = public_value.encode("utf-8")
    return hashlib.sha256(
        SEED_PREFIX
        + len(secret).to_bytes(4, "big")
        + secret
        + bytes.fromhex(list_hash_hex)
        + len(public).to_bytes(4, "big")
        + public
    ).digest()


def stream(seed_bytes):
    counter = 0
    while True:
        block = hmac.new(seed_bytes, counter.to_bytes(8, "big"), hashlib.sha256).digest()
        for offset in (0, 8, 16, 24):
            yield int.from_bytes(block[offset : offset + 8], "big")
        counter += 1


def uniform(source, n):
    limit = TWO_64 - TWO_64 % n
    while True:
        value = next(source)
        if value < limit:
            return value % n


def draw(entries, tiers, seed_bytes):
    """entries: canonical (entry_id, weight) pairs; tiers: dicts with name, quantity, order.
    Returns (tier name, position, entry id) triples in draw order."""
    pool = sorted(entries)
    plan = sorted(tiers, key=lambda t: (t["order"], t["name"]))
    source = stream(seed_bytes)
    won = set()

    def table():
        indexes = [i for i in range(len(pool)) if i not in won]
        cumulative = []
        running = 0
        for i in indexes:
            running += pool[i][1]
            cumulative.append(running)
        return indexes, cumulative

    indexes, cumulative = table()
    won_weight = 0
    winners = []
    for tier in plan:
        for position in range(1, tier["quantity"] + 1):
            if not indexes:
                return winners
            total = cumulative[-1]
            while True:
                index = indexes[bisect_right(cumulative, uniform(source, total))]
                if index not in won:
                    break
            won.add(index)
            winners.append((tier["name"], position, pool[index][0]))
            won_weight += pool[index][1]
            if 2 * won_weight >= total:
                indexes, cumulative = table()
                won_weight = 0
    return winners


def check_tiers(tiers):
    names = set()
    for tier in tiers:
        if not isinstance(tier, dict) or set(tier) != {"name", "quantity", "order"}:
            raise Invalid("each tier needs exactly name, quantity and order")
        name, quantity, order = tier["name"], tier["quantity"], tier["order"]
        if not isinstance(name, str) or not name or name != name.strip() or name in names:
            raise Invalid(f"bad or repeated tier name {name!r}")
        if type(quantity) is not int or quantity < 1 or type(order) is not int:
            raise Invalid(f"tier {name!r} needs an integer quantity >= 1 and an integer order")
        names.add(name)


def load(path):
    with open(path, "rb") as handle:
        document = json.loads(handle.read().decode("utf-8"))
    if not isinstance(document, dict):
        raise Invalid("the published file is not a JSON object")
    if ("entries" in document) == ("entries_file" in document):
        raise Invalid('give exactly one of "entries" and "entries_file"')
    if "entries" in document:
        raw = document["entries"]
        if not isinstance(raw, list) or not all(isinstance(e, list) and len(e) == 2 for e in raw):
            raise Invalid('"entries" must be a list of [entry_id, weight] pairs')
        entries = [(e[0], e[1]) for e in raw]
        canonical = canonical_list(entries)
    else:
        name = document["entries_file"]
        if not isinstance(name, str) or os.path.basename(name) != name:
            raise Invalid('"entries_file" must be a file name next to the JSON file')
        with open(os.path.join(os.path.dirname(os.path.abspath(path)), name), "rb") as handle:
            canonical = handle.read()
        entries = read_list(canonical)
    return document, entries, canonical


def problems(document, entries, canonical):
    """The reasons the published draw does not check out; empty when it does."""
    found = []
    if document.get("algorithm") != ALGORITHM:
        return [f"algorithm is {document.get('algorithm')!r}; this script checks {ALGORITHM}"]
    for key in ("list_hash", "commitment", "secret", "public_value", "tiers", "winners", "entry_count"):
        if key not in document:
            return [f'"{key}" is missing']
    if document["secret"] is None or document["winners"] is None:
        return ["the secret has not been revealed or the draw has not happened yet"]
    published_hash = document["list_hash"]
    if not isinstance(published_hash, str) or not HEX64.fullmatch(published_hash):
        return ['"list_hash" must be 64 lowercase hex digits']
    public_value = document["public_value"]
    if not isinstance(public_value, str):
        return ['"public_value" must be a string']
    try:
        secret = bytes.fromhex(document["secret"])
    except (TypeError, ValueError):
        return ['"secret" is not hex']
    if len(secret) != 32:
        return ['"secret" must be 32 bytes (64 hex digits)']
    tiers = document["tiers"]
    if not isinstance(tiers, list):
        return ['"tiers" must be a list']
    check_tiers(tiers)

    if document["entry_count"] != len(entries):
        found.append(f"entry count wrong: {len(entries)} entries, published {document['entry_count']!r}")
    actual_hash = hashlib.sha256(canonical).hexdigest()
    if actual_hash != published_hash:
        found.append(f"list hash wrong: the entries hash to {actual_hash}, published {published_hash}")
    if commitment(secret) != document["commitment"]:
        found.append(
            f"commitment wrong: the secret commits to {commitment(secret)}, published {document['commitment']}"
        )
    if found:
        return found

    expected = draw(entries, tiers, seed(secret, published_hash, public_value))
    try:
        published = [(w["tier"], w["position"], w["entry_id"]) for w in document["winners"]]
    except (TypeError, KeyError):
        return ['"winners" must be a list of {"tier", "position", "entry_id"} objects']
    if published != expected:
        for number, (want, got) in enumerate(zip(expected, published), start=1):  # noqa: B905 (Python 3.8 has no strict=)
            if want != got:
                return [f"winners differ: winner {number} is {want!r} when recomputed, published {got!r}"]
        return [f"winners differ: {len(expected)} recomputed, {len(published)} published"]
    return []


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python3 verify_lottery.py published.json", file=sys.stderr)
        return 2
    try:
        document, entries, canonical = load(argv[0])
        found = problems(document, entries, canonical)
    except (OSError, UnicodeDecodeError, ValueError, KeyError, Invalid) as exc:
        print("MISMATCH")
        print(f"  cannot check: {exc}")
        return 1
    if found:
        print("MISMATCH")
        for reason in found:
            print("  " + reason)
        return 1
    print("MATCH")
    print(f"  {len(entries)} entries, list hash {document['list_hash']}")
    for winner in document["winners"]:
        print(f"  {winner['tier']} #{winner['position']}: {winner['entry_id']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
