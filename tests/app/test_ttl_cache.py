"""The short-lived cache behind API-key and version-resolution lookups."""

import pytest

from app.ttl_cache import TtlCache


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_entries_expire_after_ttl() -> None:
    clock = Clock()
    cache: TtlCache[str, int] = TtlCache(2.0, clock=clock)
    cache.put("a", 1)
    clock.now += 1.9
    assert cache.get("a") == 1
    clock.now += 0.2
    assert cache.get("a") is None
    assert len(cache) == 0  # an expired entry is dropped when found


def test_zero_ttl_remembers_nothing() -> None:
    cache: TtlCache[str, int] = TtlCache(0.0)
    cache.put("a", 1)
    assert cache.get("a") is None


def test_discard_where_forgets_only_matching_keys() -> None:
    cache: TtlCache[tuple[str, str], int] = TtlCache(60.0)
    cache.put(("p1", "m1"), 1)
    cache.put(("p1", "m2"), 2)
    cache.put(("p2", "m1"), 3)
    cache.discard_where(lambda key: key == ("p1", "m1"))
    assert [cache.get(k) for k in [("p1", "m1"), ("p1", "m2"), ("p2", "m1")]] == [None, 2, 3]


def test_the_oldest_entries_leave_past_max_entries() -> None:
    cache: TtlCache[int, int] = TtlCache(60.0, max_entries=3)
    for i in range(5):
        cache.put(i, i)
    assert [cache.get(i) for i in range(5)] == [None, None, 2, 3, 4]


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        TtlCache(-1.0)
