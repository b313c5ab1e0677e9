"""The filtered_images cache alone: keyed by the done count, bounded by numbers held."""

from __future__ import annotations

from datastore.filtered_cache import FilteredImagesCache


def test_a_list_is_reused_only_with_the_same_done_count() -> None:
    cache = FilteredImagesCache(max_numbers=10)
    assert cache.get(1, 2) is None
    cache.put(1, 2, [0, 1])
    assert cache.get(1, 2) == [0, 1]
    assert cache.get(1, 3) is None  # a job finished since: read the list again
    assert cache.get(2, 2) is None  # another workload


def test_the_least_recently_used_lists_go_first_past_the_bound() -> None:
    cache = FilteredImagesCache(max_numbers=6)
    cache.put(1, 3, [0, 1, 2])
    cache.put(2, 3, [0, 1, 2])
    assert cache.get(1, 3) == [0, 1, 2]  # workload 1 is now the most recently used
    cache.put(3, 2, [0, 1])
    assert cache.get(2, 3) is None
    assert cache.get(1, 3) == [0, 1, 2]
    assert cache.get(3, 2) == [0, 1]


def test_a_newer_list_replaces_the_older_one_and_oversized_lists_are_not_kept() -> None:
    cache = FilteredImagesCache(max_numbers=4)
    cache.put(1, 2, [0, 1])
    cache.put(1, 4, [0, 1, 2, 3])
    assert cache.get(1, 2) is None
    assert cache.get(1, 4) == [0, 1, 2, 3]
    cache.put(2, 5, list(range(5)))
    assert cache.get(2, 5) is None
    assert cache.get(1, 4) == [0, 1, 2, 3]  # the oversized list evicted nothing
