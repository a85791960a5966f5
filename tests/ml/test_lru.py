"""The one LRU: bounded by count or by size, first value wins, lookups refresh recency."""

from __future__ import annotations

from ml.lru import LRU


def test_a_count_bounded_lru_drops_the_least_recently_used():
    lru: LRU[str, int] = LRU(2)
    lru.put("a", 1)
    lru.put("b", 2)
    assert lru.get("a") == 1  # "a" is now the most recent
    lru.put("c", 3)
    assert lru.keys() == ["a", "c"] and lru.get("b") is None


def test_a_size_bounded_lru_keeps_the_total_within_its_budget():
    lru: LRU[str, bytes] = LRU(10, size_of=len)
    for key in "abc":
        lru.put(key, b"1234")
    assert lru.keys() == ["b", "c"]
    lru.put("big", b"x" * 11)  # larger than the whole budget: not kept, nothing else lost
    assert lru.keys() == ["b", "c"]


def test_the_first_value_put_under_a_key_is_kept_and_returned():
    lru: LRU[str, list[int]] = LRU(4)
    first, second = [1], [1]
    assert lru.put("k", first) is first
    assert lru.put("k", second) is first and lru.get("k") is first


def test_find_returns_the_first_match_and_makes_it_the_most_recent():
    lru: LRU[tuple[str, int], str] = LRU(3)
    for i in range(3):
        lru.put(("slide", i), f"region {i}")
    assert lru.find(lambda key, value: key[1] >= 1) == (("slide", 1), "region 1")
    assert lru.keys() == [("slide", 0), ("slide", 2), ("slide", 1)]
    assert lru.find(lambda key, value: value == "absent") is None


def test_clear_forgets_every_entry_and_its_size():
    lru: LRU[str, bytes] = LRU(8, size_of=len)
    lru.put("a", b"12345678")
    lru.clear()
    lru.put("b", b"12345678")
    assert len(lru) == 1 and lru.get("b") == b"12345678"
