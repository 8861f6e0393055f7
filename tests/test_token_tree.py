"""Prefix-tree packing of token sequences (metrics/token_tree.py), checked by hand."""

from __future__ import annotations

from components import require
from vlmpipe.metrics.token_tree import ancestor_mask, pack


def test_shared_prefixes_become_one_branch_each():
    (pk,) = pack([[7, 1, 2, 3], [9], [7, 1, 2, 4], [7, 1, 5]], max_nodes=100)
    # sorted: [7,1,2,3], [7,1,2,4], [7,1,5], [9]; nodes 7,1,2,3 | 4 (after 2) | 5 (after 1) | 9 (a new root)
    assert pk.ids == [7, 1, 2, 3, 4, 5, 9]
    assert pk.positions == [0, 1, 2, 3, 3, 2, 0]
    assert pk.parents == [-1, 0, 1, 2, 2, 1, -1]
    assert dict(pk.texts) == {0: [0, 1, 2, 3], 2: [0, 1, 2, 4], 3: [0, 1, 5], 1: [6]}


def test_packs_split_at_max_nodes_and_skip_empty_sequences():
    packs = pack([[1, 2, 3], [1, 2, 4], [], [1, 2, 4, 5, 6]], max_nodes=4)
    assert [p.ids for p in packs] == [[1, 2, 3, 4], [1, 2, 4, 5, 6]]  # the third text would make 6 nodes: new pack
    assert [[t for t, _ in p.texts] for p in packs] == [[0, 1], [3]]  # a longer sequence gets a pack of its own


def test_each_node_attends_to_itself_and_its_ancestors_only():
    require("torch")
    import torch

    mask = ancestor_mask([-1, 0, 1, 1, -1])
    assert mask.tolist() == [
        [True, False, False, False, False],
        [True, True, False, False, False],
        [True, True, True, False, False],
        [True, True, False, True, False],  # a sibling branch does not see node 2
        [False, False, False, False, True],  # a second root sees only itself
    ]
    assert mask.dtype == torch.bool
