"""AnchorRegistry against a Python model, with hypothesis driving random sequences of role changes, anchors
(from operators and non-operators, valid and invalid) and new blocks.

The contract must agree with the model: the latest anchor and anchor count of every log, the root at
every size ever tried (the anchored root, or zero), every account's role; anchored sizes strictly
increase; and a call that the model rejects reverts with the reason the model predicts and changes
nothing. Each step checks what it could have touched; the end of each example checks everything (a call
costs about a millisecond of interpreted EVM, so checking everything after every step would be slow).
"""

from __future__ import annotations

import functools
import itertools

import boa
from eth_utils import keccak
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from ledgermind.contracts import SOURCE_DIR

MAX_SIZE = 2**64 - 1
ZERO32 = b"\x00" * 32
MISSING_ROLE = "access_control: account is missing role"


@functools.cache
def deployer():  # compiled on first use, not when pytest collects this module
    return boa.load_partial(str(SOURCE_DIR / "AnchorRegistry.vy"))


ADMIN = boa.env.eoa
OTHERS = [boa.env.generate_address(f"account-{i}") for i in range(3)]
ACCOUNTS = [ADMIN, *OTHERS]
LOGS = [keccak(b"log %d" % i) for i in range(3)]

# Zero (invalid as a root) one time in eight: often enough to be tested, rarely enough for anchors to land.
hashes = st.sampled_from([ZERO32] + [keccak(b"hash %d" % i) for i in range(7)])
# A size near the log's latest (where the boundary cases are) or anywhere in uint64.
sizes = st.one_of(st.tuples(st.just("near"), st.integers(-2, 3)), st.tuples(st.just("any"), st.integers(0, MAX_SIZE)))


class AnchorRegistryMachine(RuleBasedStateMachine):
    @initialize()
    def deploy(self) -> None:
        self.snapshot = boa.env.anchor()  # undone in teardown: each example starts from the same chain
        self.snapshot.__enter__()
        self.contract = deployer().deploy(sender=ADMIN)
        self.role = self.contract.OPERATOR_ROLE()
        # two operators from the start so that anchors land early; rules grant and revoke from there
        self.operators: set[str] = set(OTHERS[:2])
        for account in self.operators:
            self.contract.grantRole(self.role, account, sender=ADMIN)
        self.history: dict[bytes, list[tuple[int, bytes, bytes, int]]] = {log: [] for log in LOGS}
        self.tried: dict[bytes, set[int]] = {log: set() for log in LOGS}
        self.touched: tuple[str, object] | None = None  # what the last step could have changed

    def teardown(self) -> None:
        if not hasattr(self, "snapshot"):
            return
        try:
            # the full check, once per example; each step checks what it touched (touched_state_matches_model)
            for log in LOGS:
                self.check_log(log)
                self.check_roots(log, self.tried[log])
            for account in ACCOUNTS:
                assert self.contract.hasRole(self.role, account) == (account in self.operators)
        finally:
            self.snapshot.__exit__(None, None, None)

    def check_roots(self, log: bytes, sizes: set[int]) -> None:
        roots = {h[0]: h[1] for h in self.history[log]}
        for size in sizes:  # the anchored root, or zero: a rejected attempt left nothing behind
            assert self.contract.root_at(log, size) == roots.get(size, ZERO32)

    @rule(sender=st.sampled_from(ACCOUNTS), account=st.sampled_from(ACCOUNTS), grant=st.booleans())
    def change_role(self, sender, account, grant: bool) -> None:
        call = self.contract.grantRole if grant else self.contract.revokeRole
        self.touched = ("role", account)
        if sender != ADMIN:
            with boa.reverts(MISSING_ROLE):
                call(self.role, account, sender=sender)
            return
        call(self.role, account, sender=sender)
        (self.operators.add if grant else self.operators.discard)(account)

    @rule(blocks=st.integers(1, 1000))
    def mine(self, blocks: int) -> None:
        boa.env.time_travel(blocks=blocks)

    @rule(sender=st.sampled_from(ACCOUNTS), log=st.sampled_from(LOGS), size=sizes, root=hashes, checkpoint=hashes)
    def anchor(self, sender, log: bytes, size: tuple[str, int], root: bytes, checkpoint: bytes) -> None:
        latest = self.history[log][-1][0] if self.history[log] else 0
        tree_size = min(max(latest + size[1], 0), MAX_SIZE) if size[0] == "near" else size[1]
        self.tried[log].add(tree_size)
        self.touched = ("anchor", (log, tree_size))

        if sender not in self.operators:
            reason = MISSING_ROLE
        elif root == ZERO32:
            reason = "zero root"
        elif tree_size == 0:
            reason = "zero tree size"
        elif tree_size <= latest:
            reason = "tree size must increase"
        else:
            reason = None

        if reason is not None:
            with boa.reverts(reason):
                self.contract.anchor(log, tree_size, root, checkpoint, sender=sender)
            return
        self.contract.anchor(log, tree_size, root, checkpoint, sender=sender)
        self.history[log].append((tree_size, root, checkpoint, boa.env.evm.patch.block_number))

    @invariant()
    def touched_state_matches_model(self) -> None:
        """After each step, the state the step could have touched; teardown checks everything once."""
        if self.touched is None:
            return
        kind, key = self.touched
        self.touched = None
        if kind == "role":
            assert self.contract.hasRole(self.role, key) == (key in self.operators)
            return
        log, size = key
        self.check_log(log)
        self.check_roots(log, {size})

    def check_log(self, log: bytes) -> None:
        history = self.history[log]
        assert self.contract.latest(log) == (history[-1] if history else (0, ZERO32, ZERO32, 0))
        assert self.contract.anchor_count(log) == len(history)
        sizes_anchored = [h[0] for h in history]
        assert all(a < b for a, b in itertools.pairwise(sizes_anchored))


AnchorRegistryMachine.TestCase.settings = settings(
    max_examples=40, stateful_step_count=30, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestAnchorRegistry = AnchorRegistryMachine.TestCase
