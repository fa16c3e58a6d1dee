"""The in-memory loader and the dataset containers."""

import pytest
import torch

from mtvae.data.dataset import Split
from mtvae.data.loader import InMemoryLoader
from mtvae.data.shapes import load_shapes
from mtvae.data.sources import apply_label_fraction


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


def test_drop_last_and_len():
    assert len(InMemoryLoader(_split(10), 4, drop_last=True)) == 2
    assert len(InMemoryLoader(_split(10), 4)) == 3
    with pytest.raises(ValueError):
        InMemoryLoader(_split(3), 0)


def test_split_rejects_misaligned_targets():
    with pytest.raises(ValueError, match="3 targets for 10 images"):
        Split(x=torch.zeros(10, 1, 2, 2), targets={"t": torch.zeros(3)})


def test_label_fraction_keeps_the_requested_share_per_task_independently():
    data = load_shapes(n_train=1000, n_val=10, n_test=10, image_size=16)
    apply_label_fraction(data, 0.1, seed=0)
    kept = {task: int(mask.sum()) for task, mask in data.train.masks.items()}
    assert set(kept.values()) == {100}
    assert not torch.equal(data.train.masks["shape"], data.train.masks["scale"])
    assert data.val.masks["shape"].all()  # only the training split loses labels
