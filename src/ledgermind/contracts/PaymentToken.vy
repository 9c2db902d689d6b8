# pragma version 0.4.3
# pragma evm-version cancun
# pragma optimize gas
"""
@title PaymentToken
@license Apache-2.0
@notice A demo ERC-20 for the embedded and dev chains ("ledgermind payment
        token", LMPAY, 18 decimals): what clients pay providers and sellers
        with when no real stablecoin exists on the chain. Everything is
        snekmate's `erc20`: transfers, EIP-2612 `permit` (gasless
        approvals, useful to open a payment channel in one transaction
        after a signature), EIP-5267 `eip712Domain`, `burn`/`burn_from`.

        Minting: the deployer is the owner and the only minter, so `mint`
        is owner-only unless the owner adds minters with `set_minter`
        (e.g. a faucet contract on a dev chain). Nothing is minted at
        deployment. `transfer_ownership` moves the minter role with the
        ownership (snekmate's versions).
"""

from ethereum.ercs import IERC20
implements: IERC20

from ethereum.ercs import IERC20Detailed
implements: IERC20Detailed

from snekmate.tokens.interfaces import IERC20Permit
implements: IERC20Permit

from snekmate.utils.interfaces import IERC5267
implements: IERC5267

from snekmate.auth import ownable
initializes: ownable

from snekmate.tokens import erc20
initializes: erc20[ownable := ownable]

# The whole ERC-20 module: its interface already includes `owner` and
# `eip712Domain`, which the module itself exports.
exports: erc20.__interface__


# @dev Token and EIP-712 domain names; fixed so that the deploy bytecode
# takes no constructor arguments.
_NAME: constant(String[25]) = "ledgermind payment token"
_SYMBOL: constant(String[5]) = "LMPAY"
_DECIMALS: constant(uint8) = 18
_EIP712_NAME: constant(String[50]) = "ledgermind PaymentToken"
_EIP712_VERSION: constant(String[20]) = "1"


@deploy
def __init__():
    """
    @notice The deployer becomes the owner and the only minter.
    """
    ownable.__init__()
    erc20.__init__(_NAME, _SYMBOL, _DECIMALS, _EIP712_NAME, _EIP712_VERSION)
