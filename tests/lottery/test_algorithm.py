"""The draw algorithm of the year-end lottery (issue 8) and its standalone verifier.

No database here: the algorithm is pure Python, and the verifier must run on an outsider's machine.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from lottery import algorithm as lottery
from lottery import verify_lottery
from lottery.algorithm import Entry, LotteryError, Tier, Winner

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "lottery" / "verify_lottery.py"
DOC = ROOT / "docs" / "lottery.md"

# The test vector of docs/lottery.md section 6.
SALT = b"cims-lottery-v1 test vector salt"
WEIGHTS = [1, 1, 2, 1, 3, 1, 1, 5, 1, 2]
TIERS = [Tier("First prize", 1, 1), Tier("Second prize", 2, 2), Tier("Third prize", 3, 3)]
SECRET = bytes(range(32))
PUBLIC_VALUE = "Lottery draw 2025-12-31: 01"
LIST_HASH = "406148b874ceec4552a6cf2ba3e42991f3dfcb9b604daa45dbe9c706dde9f7a8"
COMMITMENT = "be4837dadfe86671873e0432f65a81998f7b147279167d175ef419fe3b1b22be"
SEED = "a0f9611c8526567bf27b66f61ae088d0616970b40be3ba8c137d1f859bce2fe5"
FIRST_VALUES = [
    8360855780344787521,
    2561423906634649374,
    9190792388154173736,
    41581874492811526,
    4827331979175742035,
    18217090703684834176,
    18169745742367649867,
]
WINNERS = [
    ("First prize", 1, "E204e2dba3477e299"),
    ("Second prize", 1, "Ea7d6ac452122ee27"),
    ("Second prize", 2, "E2f3f284f9edafd96"),
    ("Third prize", 1, "Ebdac6b6bcab5e32f"),
    ("Third prize", 2, "E8ba2136dfa5c2643"),
    ("Third prize", 3, "E89967a32f1b7d825"),
]

# Chi-square critical values at p = 0.001.
CHI2_CRITICAL_0_001 = {3: 16.266, 5: 20.515, 19: 43.820}


def vector_entries() -> list[Entry]:
    return [Entry(lottery.pseudonym(SALT, 1001 + i), w) for i, w in enumerate(WEIGHTS)]


def trial_seed(i: int) -> bytes:
    """A different, reproducible seed per trial: the statistics below are deterministic."""
    return hashlib.sha256(b"cims-lottery test seed %d" % i).digest()


def chi_square(observed: Counter, expected: dict) -> float:
    return sum((observed[k] - e) ** 2 / e for k, e in expected.items())


def published(entries=None, *, public_value=PUBLIC_VALUE, secret=SECRET, inline=True) -> dict:
    entries = vector_entries() if entries is None else entries
    entry_hash = lottery.list_hash(lottery.canonical_list(entries))
    winners = lottery.draw(entries, TIERS, lottery.seed(secret, entry_hash, public_value))
    return lottery.publication(
        entries,
        TIERS,
        commitment_hex=lottery.commitment(secret),
        secret=secret,
        public_value=public_value,
        winners=winners,
        inline_entries=inline,
    )


# --- the test vector ------------------------------------------------------------------------------


def test_it_reproduces_the_documented_test_vector():
    entries = vector_entries()
    canonical = lottery.canonical_list(entries)
    assert canonical.decode().splitlines()[0] == "E204e2dba3477e299\t3"
    assert lottery.list_hash(canonical) == LIST_HASH
    assert lottery.commitment(SECRET) == COMMITMENT
    seed = lottery.seed(SECRET, LIST_HASH, PUBLIC_VALUE)
    assert seed.hex() == SEED
    stream = lottery.stream(seed)
    assert [next(stream) for _ in FIRST_VALUES] == FIRST_VALUES
    assert lottery.draw(entries, TIERS, seed) == WINNERS


def test_it_documents_the_values_the_tests_check():
    doc = DOC.read_text()
    for value in [LIST_HASH, COMMITMENT, SEED, SECRET.hex(), PUBLIC_VALUE, *map(str, FIRST_VALUES)]:
        assert value in doc
    for tier, position, entry_id in WINNERS:
        assert f"| {tier} | {position} | {entry_id} |" in doc


def test_it_makes_stable_pseudonyms_per_event():
    assert lottery.pseudonym(SALT, 1001) == "Eb7f680bd59efe998"
    assert lottery.pseudonym(b"another event", 1001) != "Eb7f680bd59efe998"
    assert lottery.pseudonym(SALT, 1002) != lottery.pseudonym(SALT, 1001)


# --- the rules of the draw ------------------------------------------------------------------------


def test_it_never_awards_one_entry_twice():
    entries = [Entry(f"E{i:04d}", 1 + i % 7) for i in range(200)]
    tiers = [Tier("Gold", 10, 1), Tier("Silver", 40, 2), Tier("Bronze", 100, 3)]
    for i in range(20):
        winners = lottery.draw(entries, tiers, trial_seed(i))
        assert len(winners) == 150
        assert len({w.entry_id for w in winners}) == 150


def test_it_fills_tiers_in_order_and_positions_from_one():
    entries = [Entry(f"E{i}", 1) for i in range(20)]
    # Given out of order, with an order tie broken by name.
    tiers = [Tier("Third", 2, 3), Tier("Runner-up B", 1, 2), Tier("First", 1, 1), Tier("Runner-up A", 1, 2)]
    winners = lottery.draw(entries, tiers, trial_seed(0))
    assert [(w.tier, w.position) for w in winners] == [
        ("First", 1),
        ("Runner-up A", 1),
        ("Runner-up B", 1),
        ("Third", 1),
        ("Third", 2),
    ]


def test_it_stops_when_every_entry_has_won():
    entries = [Entry("A", 1), Entry("B", 10**9), Entry("C", 1)]
    winners = lottery.draw(entries, [Tier("Prize", 5, 1)], trial_seed(1))
    assert sorted(w.entry_id for w in winners) == ["A", "B", "C"]
    assert [w.position for w in winners] == [1, 2, 3]


def test_it_does_not_spin_when_a_heavy_entry_has_won():
    # Without the rebuild rule, each pick after the heavy entry wins would reject ~10**12 times.
    entries = [Entry("heavy", 10**12)] + [Entry(f"E{i}", 1) for i in range(50)]
    winners = lottery.draw(entries, [Tier("Prize", 20, 1)], trial_seed(2))
    assert len({w.entry_id for w in winners}) == 20


def test_it_does_not_depend_on_the_order_entries_come_in():
    entries = vector_entries()
    seed = lottery.seed(SECRET, LIST_HASH, PUBLIC_VALUE)
    assert lottery.draw(list(reversed(entries)), list(reversed(TIERS)), seed) == WINNERS


def test_it_gives_another_draw_for_another_public_value():
    seed = lottery.seed(SECRET, LIST_HASH, "Lottery draw 2025-12-31: 02")
    assert lottery.draw(vector_entries(), TIERS, seed) != WINNERS
    # The public value is used exactly as published: trailing whitespace is another value.
    assert lottery.seed(SECRET, LIST_HASH, PUBLIC_VALUE + " ") != lottery.seed(SECRET, LIST_HASH, PUBLIC_VALUE)


@pytest.mark.parametrize(
    "entries, message",
    [
        ([Entry("A", 1), Entry("A", 2)], "more than once"),
        ([Entry("A", 0)], "weights are integers >= 1"),
        ([Entry("A", True)], "weights are integers >= 1"),
        ([Entry("has space", 1)], "is not 1-64 characters"),
        ([Entry("tab\there", 1)], "is not 1-64 characters"),
        ([Entry("", 1)], "is not 1-64 characters"),
        ([Entry("A", 2**63), Entry("B", 2**63 + 1)], "exceeds 2**64"),
    ],
)
def test_it_refuses_an_entry_list_it_could_not_publish(entries, message):
    with pytest.raises(LotteryError, match=message.replace("*", r"\*")):
        lottery.canonical_list(entries)


def test_it_refuses_bad_tiers():
    entries = [Entry("A", 1)]
    with pytest.raises(LotteryError, match="appears more than once"):
        lottery.draw(entries, [Tier("Prize", 1, 1), Tier("Prize", 1, 2)], trial_seed(0))
    with pytest.raises(LotteryError, match="quantities are integers >= 1"):
        lottery.draw(entries, [Tier("Prize", 0, 1)], trial_seed(0))


def test_it_reads_back_only_a_canonical_list():
    canonical = lottery.canonical_list(vector_entries())
    assert lottery.canonical_list(lottery.parse_list(canonical)) == canonical
    lines = canonical.splitlines(keepends=True)
    with pytest.raises(LotteryError, match="canonical order"):
        lottery.parse_list(b"".join([lines[1], lines[0], *lines[2:]]))
    with pytest.raises(LotteryError, match="TAB"):
        lottery.parse_list(canonical.replace(b"\t3\n", b"\t03\n"))


# --- commitment and verification ------------------------------------------------------------------


def test_the_published_commitment_matches_the_revealed_secret():
    secret = lottery.new_secret()
    assert len(secret) == 32
    published_commitment = lottery.commitment(secret)
    assert lottery.commitment(secret) == published_commitment
    assert lottery.commitment(lottery.new_secret()) != published_commitment
    # Not a plain hash of the secret: the domain prefix is part of it.
    assert published_commitment != hashlib.sha256(secret).hexdigest()


def verify_kwargs(**overrides):
    kwargs = {
        "entry_list_hash": LIST_HASH,
        "commitment_hex": COMMITMENT,
        "secret": SECRET,
        "public_value": PUBLIC_VALUE,
        "winners": WINNERS,
    }
    return kwargs | overrides


def test_it_verifies_the_published_draw():
    assert lottery.verify(vector_entries(), TIERS, **verify_kwargs())


def test_one_changed_entry_changes_the_list_hash_and_fails_verification():
    entries = vector_entries()
    changed = [Entry(entries[0].entry_id, entries[0].weight + 1), *entries[1:]]
    assert lottery.list_hash(lottery.canonical_list(changed)) != LIST_HASH
    assert not lottery.verify(changed, TIERS, **verify_kwargs())
    assert lottery.problems(changed, TIERS, **verify_kwargs())[0].startswith("list hash wrong")
    renamed = [Entry("E000000000000000", entries[0].weight), *entries[1:]]
    assert not lottery.verify(renamed, TIERS, **verify_kwargs())


def test_it_fails_verification_for_another_secret_or_other_winners():
    other_secret = bytes(range(1, 33))
    assert lottery.problems(vector_entries(), TIERS, **verify_kwargs(secret=other_secret))[0].startswith(
        "commitment wrong"
    )
    swapped = [WINNERS[1], WINNERS[0], *WINNERS[2:]]
    problems = lottery.problems(vector_entries(), TIERS, **verify_kwargs(winners=swapped))
    assert problems[0].startswith("winners differ: winner 1")
    assert not lottery.verify(vector_entries(), TIERS, **verify_kwargs(winners=WINNERS[:-1]))
    assert not lottery.verify(vector_entries(), TIERS, **verify_kwargs(public_value=""))


# --- statistics -----------------------------------------------------------------------------------


def test_equal_weights_win_equally_often():
    entries = [Entry(f"E{i:02d}", 1) for i in range(20)]
    trials = 4000
    wins = Counter(lottery.draw(entries, [Tier("Prize", 1, 1)], trial_seed(i))[0].entry_id for i in range(trials))
    statistic = chi_square(wins, {e.entry_id: trials / 20 for e in entries})
    assert statistic < CHI2_CRITICAL_0_001[19]


def test_weighted_entries_win_in_proportion():
    entries = [Entry("A", 1), Entry("B", 2), Entry("C", 3), Entry("D", 4)]
    trials = 10000
    wins = Counter(lottery.draw(entries, [Tier("Prize", 1, 1)], trial_seed(i))[0].entry_id for i in range(trials))
    statistic = chi_square(wins, {e.entry_id: trials * e.weight / 10 for e in entries})
    assert statistic < CHI2_CRITICAL_0_001[3]
    assert wins["D"] > wins["C"] > wins["B"] > wins["A"]


def test_the_second_prize_is_drawn_without_replacement_in_proportion():
    # P(first = a, second = b) = w_a / W * w_b / (W - w_a): the rejection of a winner must give this.
    weights = {"A": 1, "B": 2, "C": 3}
    entries = [Entry(k, w) for k, w in weights.items()]
    trials = 6000
    pairs = Counter(
        tuple(w.entry_id for w in lottery.draw(entries, [Tier("Prize", 2, 1)], trial_seed(i))) for i in range(trials)
    )
    expected = {(a, b): trials * wa / 6 * weights[b] / (6 - wa) for a, wa in weights.items() for b in weights if b != a}
    assert set(pairs) <= set(expected)
    assert chi_square(pairs, expected) < CHI2_CRITICAL_0_001[5]


# --- uniform() and modulo bias --------------------------------------------------------------------


def test_uniform_rejects_values_at_or_above_the_largest_multiple():
    n = 2**63 + 1  # 2**64 mod n = 2**63 - 1, so values >= n are rejected
    values = iter([2**64 - 1, 2**63 + 1, n, 2**63, 5])
    assert lottery.uniform(values, n) == 2**63
    assert lottery.uniform(values, n) == 5
    # A plain modulo would have turned the first value into 2**63 - 2.


def test_uniform_has_no_modulo_bias_near_2_63():
    # n = 3 * 2**62: uniform on [0, n) lands in the top third [2**63, n) one time in three, where
    # `value % n` would land there only one time in four (the wrap-around refills [0, 2**62)).
    n = 3 * 2**62
    stream = lottery.stream(trial_seed(99))
    trials = 3000
    top = sum(lottery.uniform(stream, n) >= 2**63 for _ in range(trials))
    assert abs(top - trials / 3) < 5 * (trials * 1 / 3 * 2 / 3) ** 0.5  # 5 sigma; the biased 750 is ~10 away


def test_uniform_covers_the_whole_range_for_2_64():
    assert lottery.uniform(iter([2**64 - 1]), 2**64) == 2**64 - 1
    with pytest.raises(LotteryError):
        lottery.uniform(iter([0]), 0)


# --- the standalone script ------------------------------------------------------------------------


def scrambled_case(i: int) -> tuple[list[Entry], list[Tier], bytes, str]:
    """Varied, reproducible inputs: sizes, weights (up to huge), tiers and public values from a hash."""

    def number(label: str, modulus: int) -> int:
        return int.from_bytes(hashlib.sha256(b"%d/%s" % (i, label.encode())).digest(), "big") % modulus

    size = 1 + number("size", 300)
    big = number("big", 4) == 0
    entries = [
        Entry(f"E{number(f'id{k}', 16**12):012x}", 1 + number(f"w{k}", 2**40 if big else 9)) for k in range(size)
    ]
    tiers = [Tier(f"Tier {t}", 1 + number(f"q{t}", 40), number(f"o{t}", 3)) for t in range(1 + number("tiers", 4))]
    secret = hashlib.sha256(b"secret %d" % i).digest()
    public_value = ["", "7 14 21 28 35 42", "beacon 0x2f…", "福彩 2025-12-31"][number("pv", 4)]
    return entries, tiers, secret, public_value


@pytest.mark.parametrize("case", range(40))
def test_the_script_and_the_module_agree(case):
    entries, tiers, secret, public_value = scrambled_case(case)
    pairs = [(e.entry_id, e.weight) for e in entries]
    canonical = lottery.canonical_list(entries)
    assert verify_lottery.canonical_list(pairs) == canonical
    entry_hash = lottery.list_hash(canonical)
    assert verify_lottery.commitment(secret) == lottery.commitment(secret)
    seed = lottery.seed(secret, entry_hash, public_value)
    assert verify_lottery.seed(secret, entry_hash, public_value) == seed
    tier_dicts = [{"name": t.name, "quantity": t.quantity, "order": t.order} for t in tiers]
    assert verify_lottery.draw(pairs, tier_dicts, seed) == [tuple(w) for w in lottery.draw(entries, tiers, seed)]


def run_script(tmp_path: Path, document: dict, entries_file: bytes | None = None) -> subprocess.CompletedProcess:
    # A copy outside the project, run with -I -S (no site-packages, no project path): stdlib only.
    script = tmp_path / "verify_lottery.py"
    shutil.copy(SCRIPT, script)
    (tmp_path / "published.json").write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    if entries_file is not None:
        (tmp_path / "entries.tsv").write_bytes(entries_file)
    return subprocess.run(
        [sys.executable, "-I", "-S", str(script), "published.json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_script_says_match_for_the_published_draw(tmp_path):
    result = run_script(tmp_path, published())
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("MATCH\n")
    assert "First prize #1: E204e2dba3477e299" in result.stdout


def test_the_script_reads_a_separate_entries_file(tmp_path):
    canonical = lottery.canonical_list(vector_entries())
    result = run_script(tmp_path, published(inline=False), entries_file=canonical)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("MATCH\n")


def test_the_script_says_mismatch_for_a_changed_entry(tmp_path):
    document = published()
    document["entries"][0][1] += 1
    result = run_script(tmp_path, document)
    assert result.returncode == 1
    assert result.stdout.startswith("MISMATCH\n")
    assert "list hash wrong" in result.stdout


def test_the_script_says_mismatch_for_an_entries_file_out_of_order(tmp_path):
    lines = lottery.canonical_list(vector_entries()).splitlines(keepends=True)
    result = run_script(tmp_path, published(inline=False), entries_file=b"".join([lines[1], lines[0], *lines[2:]]))
    assert result.returncode == 1
    assert "not in canonical form" in result.stdout


def test_the_script_says_mismatch_for_a_wrong_secret(tmp_path):
    document = published()
    document["secret"] = bytes(range(1, 33)).hex()
    result = run_script(tmp_path, document)
    assert result.returncode == 1
    assert "commitment wrong" in result.stdout


def test_the_script_says_mismatch_for_other_winners(tmp_path):
    document = published()
    document["winners"][0]["entry_id"] = "Ef3256550a24a88f5"
    result = run_script(tmp_path, document)
    assert result.returncode == 1
    assert "winners differ: winner 1" in result.stdout


def test_the_script_says_mismatch_for_another_public_value(tmp_path):
    document = published()
    document["public_value"] = "Lottery draw 2025-12-31: 02"
    result = run_script(tmp_path, document)
    assert result.returncode == 1
    assert "winners differ" in result.stdout


def test_the_script_checks_a_non_ascii_public_value(tmp_path):
    result = run_script(tmp_path, published(public_value="福彩 2025-12-31 第001期"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_script_refuses_a_draw_not_yet_made(tmp_path):
    document = published()
    document["secret"] = None
    document["winners"] = None
    result = run_script(tmp_path, document)
    assert result.returncode == 1
    assert "not been revealed" in result.stdout


def test_the_publication_lists_what_the_issue_asks_for():
    document = published()
    assert document["algorithm"] == "cims-lottery-v1"
    assert document["entry_count"] == 10
    assert document["list_hash"] == LIST_HASH
    assert document["commitment"] == COMMITMENT
    assert document["tiers"][0] == {"name": "First prize", "quantity": 1, "order": 1}
    assert [(w["tier"], w["position"], w["entry_id"]) for w in document["winners"]] == WINNERS
    before = lottery.publication(vector_entries(), TIERS, commitment_hex=COMMITMENT)
    assert before["secret"] is None and before["winners"] is None


def test_winners_are_plain_tuples_to_the_caller():
    assert Winner("First prize", 1, "E1") == ("First prize", 1, "E1")
