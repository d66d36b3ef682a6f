"""Task keys in 16 bytes each (radflow.pipeline.keys): the same set semantics as Python sets."""

from __future__ import annotations

import numpy as np

from radflow.pipeline.keys import DIGEST, KeySet, digest_of, key_of, pack, unpack

#: Keys of radflow's form, written out by hand (the digest is the hex after the prefix).
A = "radflow-extract-" + "00" * 16
B = "radflow-extract-" + "0123456789abcdef" * 2
C = "radflow-extract-" + "ff" * 15 + "00"  # ends in a zero byte: numpy would drop it from S16
D = "radflow-extract-" + "7f" * 16
#: Keys of other forms: short, another prefix, uppercase hex, hex with spaces.
ODD = [
    "k1",
    "radflow-pack-" + "00" * 16,
    "radflow-extract-" + "AB" * 16,
    "radflow-extract-" + " a" * 16,
]


def test_digests_are_the_hex_after_the_prefix_and_other_forms_have_none():
    assert digest_of(B) == bytes(range(0x01, 0x100, 0x22)) * 2
    assert digest_of(C) == b"\xff" * 15 + b"\x00"
    assert key_of(digest_of(C)) == C
    assert [digest_of(k) for k in ODD] == [None] * len(ODD)


def test_a_key_set_answers_as_a_python_set():
    keys = [C, A, B, A, *ODD[:2]]
    packed = KeySet.from_keys(keys)
    reference = set(keys)
    assert len(packed) == len(reference) == 5
    assert sorted(packed) == sorted(reference)
    for key in [A, B, C, D, *ODD, "", "radflow-extract-"]:
        assert (key in packed) == (key in reference), key
    assert 42 not in packed
    assert packed.members([D, C, ODD[1], ODD[2], A, A]) == [C, ODD[1], A, A]
    asked = np.array([digest_of(k) for k in (A, D, C)], DIGEST)
    assert packed.contains(asked).tolist() == [True, False, True]
    assert KeySet().contains(asked).tolist() == [False, False, False]
    assert len(KeySet()) == 0 and A not in KeySet()


def test_packed_cases_give_their_sorted_keys_back_and_unite():
    assert len(pack([B, A, B])) == 32  # 16 bytes a key, repeats once
    assert unpack(pack([C, B, A, B])) == [A, B, C]
    assert unpack(pack([C, "k1"])) == sorted([C, "k1"])  # any other form: strings kept
    assert unpack(pack([])) == []
    union = KeySet.union([pack([A, B]), pack([C]), pack([D, "k1"]), pack([])])
    assert sorted(union) == sorted([A, B, C, D, "k1"])
    assert "k1" in union and D in union
