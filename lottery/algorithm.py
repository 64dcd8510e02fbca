"""The verifiable draw of the year-end lottery (issue 8), as pure Python.

Nothing here touches the database: the models and services hand in entries, tiers and the revealed
secret, and publish what comes out. `docs/lottery.md` is the specification; every byte layout below
is described there, and `lottery/verify_lottery.py` is an independent copy of this algorithm that we
hand to outsiders. Change one and you must change the other (a test checks they agree) and the
algorithm version.

Python's `random` module is never used: all randomness comes from `secrets` (the server secret) and
an HMAC-SHA256 counter stream keyed with the seed.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from bisect import bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import accumulate
from operator import attrgetter
from typing import NamedTuple

ALGORITHM = "cims-lottery-v1"

COMMITMENT_PREFIX = b"cims-lottery-v1/commitment\x00"
SEED_PREFIX = b"cims-lottery-v1/seed\x00"
PSEUDONYM_PREFIX = b"cims-lottery-v1/entry\x00"

SECRET_BYTES = 32
MAX_TOTAL_WEIGHT = 2**64
MAX_PUBLIC_VALUE_BYTES = 1024

# Entry ids go into a tab-separated list, so they may not hold whitespace; a narrow ASCII alphabet also
# makes "sorted by entry_id" mean the same thing in every language (code point = byte order).
ENTRY_ID_RE = re.compile(r"[A-Za-z0-9._:-]{1,64}")
HEX64_RE = re.compile(r"[0-9a-f]{64}")


class LotteryError(ValueError):
    """Inputs that the algorithm refuses: the draw must never run on something it cannot publish."""


@dataclass(frozen=True, slots=True)
class Entry:
    entry_id: str
    weight: int = 1


@dataclass(frozen=True, slots=True)
class Tier:
    name: str
    quantity: int
    order: int


class Winner(NamedTuple):
    tier: str
    position: int  # 1-based within the tier
    entry_id: str


def pseudonym(event_salt: bytes, customer_id: int) -> str:
    """The entry id published for a customer: unlinkable without the event's salt, stable within an event."""
    if not event_salt:
        raise LotteryError("the event salt must not be empty")
    if isinstance(customer_id, bool) or not isinstance(customer_id, int) or customer_id < 0:
        raise LotteryError(f"customer id must be a non-negative integer, not {customer_id!r}")
    mac = hmac.new(event_salt, PSEUDONYM_PREFIX + str(customer_id).encode("ascii"), hashlib.sha256)
    return "E" + mac.hexdigest()[:16]


def canonical_entries(entries: Iterable[Entry]) -> list[Entry]:
    """The entries validated and sorted by entry id: the order the list hash and the draw both use."""
    ordered = sorted(entries, key=attrgetter("entry_id"))
    total = 0
    previous = None
    match = ENTRY_ID_RE.fullmatch
    for entry in ordered:
        entry_id, weight = entry.entry_id, entry.weight
        if not isinstance(entry_id, str) or not match(entry_id):
            raise LotteryError(f"entry id {entry_id!r} is not 1-64 characters of A-Z a-z 0-9 . _ : -")
        if entry_id == previous:
            raise LotteryError(f"entry id {entry_id} appears more than once")
        if type(weight) is not int or weight < 1:
            raise LotteryError(f"entry {entry_id} has weight {weight!r}; weights are integers >= 1")
        total += weight
        previous = entry_id
    if total > MAX_TOTAL_WEIGHT:
        raise LotteryError(f"the total weight {total} exceeds 2**64")
    return ordered


def canonical_list(entries: Iterable[Entry]) -> bytes:
    """The published entry list: one UTF-8 line "entry_id<TAB>weight<LF>" per entry, sorted by entry id."""
    return "".join(f"{e.entry_id}\t{e.weight}\n" for e in canonical_entries(entries)).encode("utf-8")


def parse_list(data: bytes) -> list[Entry]:
    """Read a published entry list back; it must be exactly in canonical form, or its hash means nothing."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LotteryError("the entry list is not UTF-8") from exc
    if text and not text.endswith("\n"):
        raise LotteryError("the entry list must end with a newline")
    entries = []
    for number, line in enumerate(text.split("\n")[:-1], start=1):
        entry_id, tab, weight = line.partition("\t")
        if not tab or not re.fullmatch(r"[1-9][0-9]*", weight):
            raise LotteryError(f"line {number} is not 'entry_id<TAB>weight'")
        entries.append(Entry(entry_id, int(weight)))
    if canonical_list(entries) != data:
        raise LotteryError("the entry list is not in canonical order")
    return entries


def list_hash(canonical: bytes) -> str:
    return hashlib.sha256(canonical).hexdigest()


def new_secret() -> bytes:
    return secrets.token_bytes(SECRET_BYTES)


def commitment(secret: bytes) -> str:
    """Published before the draw; the prefix keeps this hash from being reused as any other hash of the secret."""
    _check_secret(secret)
    return hashlib.sha256(COMMITMENT_PREFIX + secret).hexdigest()


def seed(secret: bytes, entry_list_hash: str, public_value: str = "") -> bytes:
    """SHA-256 of: prefix, u32be(len(secret)), secret, the 32 raw bytes of the list hash,
    u32be(len(public value)), the public value in UTF-8 (used exactly as published: no trimming)."""
    _check_secret(secret)
    if not isinstance(entry_list_hash, str) or not HEX64_RE.fullmatch(entry_list_hash):
        raise LotteryError("the list hash must be 64 lowercase hex digits")
    public = public_value.encode("utf-8")
    if len(public) > MAX_PUBLIC_VALUE_BYTES:
        raise LotteryError(f"the public value is longer than {MAX_PUBLIC_VALUE_BYTES} bytes")
    material = b"".join(
        [
            SEED_PREFIX,
            len(secret).to_bytes(4, "big"),
            secret,
            bytes.fromhex(entry_list_hash),
            len(public).to_bytes(4, "big"),
            public,
        ]
    )
    return hashlib.sha256(material).digest()


def stream(seed_bytes: bytes) -> Iterator[int]:
    """Unsigned 64-bit integers: block i = HMAC-SHA256(seed, u64be(i)) for i = 0, 1, ..., each block
    read as four big-endian 8-byte integers in order."""
    if len(seed_bytes) != 32:
        raise LotteryError("the seed must be 32 bytes")
    key = hmac.new(seed_bytes, digestmod=hashlib.sha256)
    counter = 0
    while True:
        mac = key.copy()
        mac.update(counter.to_bytes(8, "big"))
        block = mac.digest()
        for offset in (0, 8, 16, 24):
            yield int.from_bytes(block[offset : offset + 8], "big")
        counter += 1


def uniform(source: Iterator[int], n: int) -> int:
    """An integer in [0, n) without modulo bias: 64-bit values at or above the largest multiple of n
    that fits are rejected and the next value is taken."""
    if not 1 <= n <= MAX_TOTAL_WEIGHT:
        raise LotteryError(f"uniform() range {n} is outside 1..2**64")
    limit = MAX_TOTAL_WEIGHT - MAX_TOTAL_WEIGHT % n
    while True:
        value = next(source)
        if value < limit:
            return value % n


def ordered_tiers(tiers: Iterable[Tier]) -> list[Tier]:
    """Tiers in draw order: by `order`, ties broken by name (code point order)."""
    tiers = list(tiers)
    names = set()
    for tier in tiers:
        if not isinstance(tier.name, str) or not tier.name or tier.name != tier.name.strip():
            raise LotteryError(f"tier name {tier.name!r} must be non-empty without surrounding whitespace")
        if tier.name in names:
            raise LotteryError(f"tier name {tier.name!r} appears more than once")
        if type(tier.quantity) is not int or tier.quantity < 1:
            raise LotteryError(f"tier {tier.name!r} has quantity {tier.quantity!r}; quantities are integers >= 1")
        if type(tier.order) is not int:
            raise LotteryError(f"tier {tier.name!r} has order {tier.order!r}; orders are integers")
        names.add(tier.name)
    return sorted(tiers, key=lambda t: (t.order, t.name))


def draw(entries: Iterable[Entry], tiers: Iterable[Tier], seed_bytes: bytes) -> list[Winner]:
    """Weighted selection without replacement, prizes filled tier by tier, position by position.

    Each pick draws r = uniform(total) over the cumulative weights of a table of entries (canonical
    order) and takes the entry whose interval holds r (bisect); an entry that has already won is
    rejected and the pick draws again. That is exactly "proportional to weight among those who have
    not won yet", with no per-pick O(n) work. So that heavy winners cannot make rejections endless,
    the table is rebuilt from the entries that have not won as soon as the weight won from it reaches
    half its total (at most 64 rebuilds, since each one at least halves the total). When every entry
    has won, the remaining prizes stay unawarded.
    """
    pool = canonical_entries(entries)
    plan = ordered_tiers(tiers)
    source = stream(seed_bytes)
    won: set[int] = set()  # indexes into `pool`
    table, cumulative, won_weight = _table(pool, won)
    winners: list[Winner] = []
    for tier in plan:
        for position in range(1, tier.quantity + 1):
            if not table:
                return winners
            total = cumulative[-1]
            while True:
                slot = bisect_right(cumulative, uniform(source, total))
                index = table[slot]
                if index not in won:
                    break
            won.add(index)
            winners.append(Winner(tier.name, position, pool[index].entry_id))
            won_weight += pool[index].weight
            if 2 * won_weight >= total:
                table, cumulative, won_weight = _table(pool, won)
    return winners


def _table(pool: list[Entry], won: set[int]) -> tuple[list[int], list[int], int]:
    table = [i for i in range(len(pool)) if i not in won] if won else list(range(len(pool)))
    cumulative = list(accumulate(pool[i].weight for i in table))
    return table, cumulative, 0


def problems(
    entries: Iterable[Entry],
    tiers: Iterable[Tier],
    *,
    entry_list_hash: str,
    commitment_hex: str,
    secret: bytes,
    public_value: str,
    winners: Iterable[tuple[str, int, str]],
) -> list[str]:
    """Why a published draw does not check out; empty when it does."""
    entries = list(entries)
    try:
        found = []
        actual_hash = list_hash(canonical_list(entries))
        if actual_hash != entry_list_hash:
            found.append(f"list hash wrong: the entries hash to {actual_hash}, published {entry_list_hash}")
        if commitment(secret) != commitment_hex:
            found.append(f"commitment wrong: the secret commits to {commitment(secret)}, published {commitment_hex}")
        if found:
            return found
        expected = draw(entries, tiers, seed(secret, entry_list_hash, public_value))
    except LotteryError as exc:
        return [f"invalid input: {exc}"]
    published = [Winner(*w) for w in winners]
    if published != expected:
        return [f"winners differ: {_first_difference(expected, published)}"]
    return []


def verify(
    entries: Iterable[Entry],
    tiers: Iterable[Tier],
    *,
    entry_list_hash: str,
    commitment_hex: str,
    secret: bytes,
    public_value: str,
    winners: Iterable[tuple[str, int, str]],
) -> bool:
    return not problems(
        entries,
        tiers,
        entry_list_hash=entry_list_hash,
        commitment_hex=commitment_hex,
        secret=secret,
        public_value=public_value,
        winners=winners,
    )


def publication(
    entries: Iterable[Entry],
    tiers: Iterable[Tier],
    *,
    commitment_hex: str,
    secret: bytes | None = None,
    public_value: str = "",
    winners: Iterable[tuple[str, int, str]] | None = None,
    inline_entries: bool = True,
) -> dict:
    """The published JSON document (see docs/lottery.md). Before the draw, `secret` and `winners` are None;
    with `inline_entries=False` the entry list is published as its own file, named in "entries_file"."""
    pool = canonical_entries(entries)
    document: dict = {
        "algorithm": ALGORITHM,
        "entry_count": len(pool),
        "list_hash": list_hash(canonical_list(pool)),
        "tiers": [{"name": t.name, "quantity": t.quantity, "order": t.order} for t in ordered_tiers(tiers)],
        "commitment": commitment_hex,
        "secret": secret.hex() if secret is not None else None,
        "public_value": public_value,
        "winners": None
        if winners is None
        else [{"tier": t, "position": p, "entry_id": e} for t, p, e in (Winner(*w) for w in winners)],
    }
    if inline_entries:
        document["entries"] = [[e.entry_id, e.weight] for e in pool]
    else:
        document["entries_file"] = "entries.tsv"
    return document


def _check_secret(secret: bytes) -> None:
    if not isinstance(secret, bytes) or len(secret) != SECRET_BYTES:
        raise LotteryError(f"the secret must be {SECRET_BYTES} bytes")


def _first_difference(expected: list[Winner], published: list[Winner]) -> str:
    for number, (want, got) in enumerate(zip(expected, published, strict=False), start=1):
        if want != got:
            return f"winner {number}: recomputed {tuple(want)}, published {tuple(got)}"
    return f"recomputed {len(expected)} winners, published {len(published)}"
