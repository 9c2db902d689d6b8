"""A malicious ERC-20 for reentrancy tests of the contracts that hold tokens (Federation, AIOracle, Insurance)."""

EVIL_TOKEN = """
# pragma version 0.4.3
# pragma evm-version cancun

# An ERC-20 whose every transfer first calls a target with a payload set in advance, as the token itself, and
# records whether that call went through. It also acts as an account (`act`), so it can hold rightful balances
# in the contracts under attack and try to take them twice. No allowances: it is malicious.

balanceOf: public(HashMap[address, uint256])
target: public(address)
payload: public(Bytes[1024])
attempts: public(uint256)
reentered: public(uint256)


@external
def mint(to: address, amount: uint256):
    self.balanceOf[to] += amount


@external
def arm(target: address, payload: Bytes[1024]):
    self.target = target
    self.payload = payload


@external
def act(target: address, payload: Bytes[1024]):
    raw_call(target, payload)


@external
def approve(spender: address, amount: uint256) -> bool:
    return True


@internal
def _hook():
    target: address = self.target
    if target == empty(address):
        return
    self.target = empty(address)
    self.attempts += 1
    if raw_call(target, self.payload, revert_on_failure=False):
        self.reentered += 1


@external
def transfer(to: address, amount: uint256) -> bool:
    self._hook()
    self.balanceOf[msg.sender] -= amount
    self.balanceOf[to] += amount
    return True


@external
def transferFrom(owner: address, to: address, amount: uint256) -> bool:
    self._hook()
    self.balanceOf[owner] -= amount
    self.balanceOf[to] += amount
    return True
"""
