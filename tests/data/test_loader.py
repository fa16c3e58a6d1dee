"""The in-memory loader and the dataset containers."""

import pytest
import torch

from mtvae.data.dataset import Split
from mtvae.data.loader import InMemoryLoader


def _split(n=10):
    x = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1)
    return Split(x=x, targets={"t": torch.arange(n)}, masks={"t": torch.arange(n) % 2 == 0})


def test_unshuffled_batches_cover_the_split_in_order():
    batches = list(InMemoryLoader(_split(10), batch_size=4))
    assert [len(b.x) for b in batches] == [4, 4, 2]
    assert torch.cat([b.x.flatten() for b in batches]).tolist() == list(range(10))


def test_shuffled_batches_are_a_permutation_with_aligned_targets_and_masks():
    loader = InMemoryLoader(_split(10), 3, shuffle=True, generator=torch.Generator().manual_seed(0))
    seen = []
    for batch in loader:
        assert torch.equal(batch.x.flatten().long(), batch.targets["t"])
        assert torch.equal(batch.masks["t"], batch.targets["t"] % 2 == 0)
        seen += batch.targets["t"].tolist()
    assert sorted(seen) == list(range(10)) and seen != list(range(10))


def test_shuffle_order_is_reproducible_from_generator_state():
    gen = torch.Generator().manual_seed(3)
    loader = InMemoryLoader(_split(20), 5, shuffle=True, generator=gen)
    state = gen.get_state()
    first = [b.targets["t"].tolist() for b in loader]
    gen.set_state(state)
    assert [b.targets["t"].tolist() for b in loader] == first
    assert [b.targets["t"].tolist() for b in loader] != first  # the next epoch differs
    other = InMemoryLoader(_split(20), 5, shuffle=True, generator=torch.Generator().manual_seed(4))
    assert [b.targets["t"].tolist() for b in other] != first  # another seed, another order


def test_drop_last_and_len():
    assert len(InMemoryLoader(_split(10), 4, drop_last=True)) == 2
    assert len(InMemoryLoader(_split(10), 4)) == 3
    with pytest.raises(ValueError):
        InMemoryLoader(_split(3), 0)


def test_split_rejects_misaligned_targets():
    with pytest.raises(ValueError, match="3 targets for 10 images"):
        Split(x=torch.zeros(10, 1, 2, 2), targets={"t": torch.zeros(3)})


def test_labelled_oversampling_appends_labelled_samples_to_every_batch():
    split = _split(20)  # even indices are labelled
    loader = InMemoryLoader(split, 6, shuffle=True, generator=torch.Generator().manual_seed(0),
                            labelled_per_batch=4)
    batches = list(loader)
    assert [len(b.x) for b in batches] == [10, 10, 10, 6]
    extras = torch.cat([b.targets["t"][-4:] for b in batches])
    assert torch.all(extras % 2 == 0)  # only labelled samples are appended
    assert len(set(extras[:8].tolist())) == 8  # two whole chunks of one pass: no repeats


def test_labelled_oversampling_with_a_pool_smaller_than_the_chunk():
    split = _split(6)
    split.masks["t"] = torch.tensor([False, False, True, False, False, False])
    batch = next(iter(InMemoryLoader(split, 3, labelled_per_batch=5)))
    assert batch.targets["t"][-5:].tolist() == [2] * 5


def test_no_labels_means_no_oversampling():
    split = _split(6)
    split.masks["t"] = torch.zeros(6, dtype=torch.bool)
    assert [len(b.x) for b in InMemoryLoader(split, 3, labelled_per_batch=5)] == [3, 3]
