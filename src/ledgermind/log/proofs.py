"""Which stored nodes make up an RFC 9162 proof: the plan, without the hashes.

A node is ``(level, index)``: level 0 holds the leaf hashes, and node (k, i) is the root of the perfect
subtree over leaves [i * 2**k, (i + 1) * 2**k). A log stores every such node once it is complete.
A proof is a list of *items*; each item is a tuple of stored nodes folded right to left into one hash
(one node for an ordinary sibling, several for an "ephemeral" node on the tree's uneven right border).
Storage-free: the store fetches the nodes and folds them.
"""

from __future__ import annotations

from collections.abc import Callable

from ledgermind.log.hashing import fold_right
from ledgermind.log.verify import LeafIndexError, SizeError, decompose

Node = tuple[int, int]
ProofPlan = list[tuple[Node, ...]]


def range_nodes(begin: int, end: int) -> tuple[Node, ...]:
    """Decompose leaves [begin, end) into the fewest perfect subtrees, left to right (a compact range)."""
    nodes: list[Node] = []
    while begin < end:
        # largest aligned power of two starting at begin that fits
        level = (begin & -begin).bit_length() - 1 if begin else (end - begin).bit_length() - 1
        while begin + (1 << level) > end:
            level -= 1
        nodes.append((level, begin >> level))
        begin += 1 << level
    return tuple(nodes)


def _path(index: int, size: int, start_level: int) -> ProofPlan:
    inner, _ = decompose(index, size)
    plan: ProofPlan = []
    for level in range(start_level, inner):
        sibling = (index >> level) ^ 1
        if level == inner - 1:
            # the sibling on the last inner level holds leaf size-1 and may be incomplete
            plan.append(range_nodes(sibling << level, size))
        else:
            plan.append(((level, sibling),))
    for level in range(inner, size.bit_length()):
        if (index >> level) & 1:
            plan.append(((level, (index >> level) - 1),))
    return plan


def inclusion_plan(index: int, size: int) -> ProofPlan:
    """Nodes of the inclusion proof for leaf ``index`` in a tree of ``size`` leaves. Requires 0 <= index < size."""
    if not 0 <= index < size:
        raise LeafIndexError(f"index {index} is beyond the tree: expected 0 <= index < size {size}")
    return _path(index, size, 0)


def consistency_plan(size1: int, size2: int) -> ProofPlan:
    """Nodes of the consistency proof from ``size1`` to ``size2``. Requires 0 < size1 <= size2."""
    if not 0 < size1 <= size2:
        raise SizeError(f"expected 0 < size1 <= size2, got size1 {size1}, size2 {size2}")
    if size1 == size2:
        return []
    shift = (size1 & -size1).bit_length() - 1
    plan = _path(size1 - 1, size2, shift)
    if size1 != 1 << shift:
        # the older tree's last perfect subtree seeds the verifier's chain
        plan.insert(0, ((shift, (size1 - 1) >> shift),))
    return plan


def root_plan(size: int) -> tuple[Node, ...]:
    """Nodes whose right fold is the root of the tree of ``size`` leaves (empty for size 0)."""
    return range_nodes(0, size)


def resolve(plan: ProofPlan, get_node: Callable[[Node], bytes]) -> list[bytes]:
    """Turn a plan into proof hashes by fetching each node with ``get_node`` and folding the items."""
    return [get_node(item[0]) if len(item) == 1 else fold_right([get_node(n) for n in item]) for item in plan]
