"""Fast secp256k1 signing and EIP-712 voucher hashing for the hot paths of paid inference.

A provider signs one receipt and checks one voucher per request, and a busy client signs one voucher per
request: eth-account takes ~280 us to sign, coincurve ~50 us. Both are RFC 6979 deterministic with low-s
normalisation, so ``Signer`` produces byte-for-byte the signatures eth-account would (the tests check it):
anything signed here verifies with ``ledgermind.statements`` and ``ledgermind.market.eip712`` unchanged.
"""

from __future__ import annotations

from functools import lru_cache

import coincurve

from ledgermind.market.eip712 import CHANNELS_NAME, CHANNELS_VERSION, Voucher, domain_separator
from ledgermind.statements.dsse import IN_TOTO_PAYLOAD_TYPE, Envelope, checksum_address, keccak, pae, recover_signer_from_hash

_VOUCHER_TYPEHASH = keccak(b"Voucher(bytes32 channelId,uint256 amount)")
# binds a ticket chain to a voucher (see ledgermind.inference.tickets); off chain only, same domain as vouchers
TICKET_BOOK_TYPE = "TicketBook(bytes32 channelId,uint256 amount,bytes32 anchor)"
_BOOK_TYPEHASH = keccak(TICKET_BOOK_TYPE.encode())


class Signer:
    """A secp256k1 key that signs 32-byte digests as Ethereum does: 65 bytes ``r || s || v`` with v in {27, 28}."""

    def __init__(self, private_key: bytes) -> None:
        """Requires a 32-byte private key (e.g. ``LocalAccount.key``)."""
        self._key = coincurve.PrivateKey(bytes(private_key))
        self.address = checksum_address(keccak(self._key.public_key.format(compressed=False)[1:])[12:])

    def sign_digest(self, digest: bytes) -> bytes:
        sig = self._key.sign_recoverable(digest, hasher=None)  # r || s || recovery id (0/1), low s
        return sig[:64] + bytes([sig[64] + 27])

    def sign_envelope(self, payload: bytes, payload_type: str = IN_TOTO_PAYLOAD_TYPE) -> Envelope:
        """The DSSE envelope ``ledgermind.statements.sign_envelope`` makes (EIP-191 over the PAE), in ~60 us."""
        message = pae(payload_type, payload)
        digest = keccak(b"\x19Ethereum Signed Message:\n" + str(len(message)).encode() + message)
        return Envelope(payload, payload_type, ((self.address, self.sign_digest(digest)),))


class VoucherDomain:
    """EIP-712 hashing of vouchers for one PaymentChannels deployment, with its domain separator computed once."""

    def __init__(self, chain_id: int, contract: str) -> None:
        self.chain_id = chain_id
        self.contract = contract
        self._prefix = b"\x19\x01" + domain_separator(CHANNELS_NAME, CHANNELS_VERSION, chain_id, contract)

    def digest(self, channel_id: bytes, amount: int) -> bytes:
        """What ``Voucher(channel_id, amount).digest(chain_id, contract)`` returns (requires 0 <= amount < 2**256)."""
        return keccak(self._prefix + keccak(_VOUCHER_TYPEHASH + channel_id + amount.to_bytes(32, "big")))

    def sign(self, signer: Signer, channel_id: bytes, amount: int) -> Voucher:
        return Voucher(channel_id, amount, signer.sign_digest(self.digest(channel_id, amount)))

    def book_digest(self, channel_id: bytes, amount: int, anchor: bytes) -> bytes:
        """The EIP-712 digest of ``TicketBook(channel_id, amount, anchor)`` (32-byte id and anchor)."""
        return keccak(self._prefix + keccak(_BOOK_TYPEHASH + channel_id + amount.to_bytes(32, "big") + anchor))

    def signer_of(self, voucher: Voucher) -> str:
        """The checksummed address that signed ``voucher``. Raises SignatureError (malformed, high s, no key)."""
        return recover_signer_from_hash(self.digest(voucher.channel_id, voucher.amount), voucher.signature)


@lru_cache(maxsize=64)
def voucher_domain(chain_id: int, contract: str) -> VoucherDomain:
    return VoucherDomain(chain_id, contract)
