"""The EIP-712 messages of ledgermind's markets, shared by signers (clients) and verifiers (providers,
contracts): payment-channel vouchers and access requests.

Hashing follows EIP-712 exactly (``eth_account.messages.encode_typed_data``); recovery uses coincurve
directly, because a provider checks one of these per request.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ledgermind.errors import InvalidInputError, SignatureError
from ledgermind.statements.dsse import keccak, recover_signer_from_hash

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

CHANNELS_NAME, CHANNELS_VERSION = "ledgermind PaymentChannels", "1"
ACCESS_NAME, ACCESS_VERSION = "ledgermind Access", "1"

VOUCHER_TYPES = {"Voucher": [{"name": "channelId", "type": "bytes32"}, {"name": "amount", "type": "uint256"}]}
ACCESS_TYPES = {
    "AccessRequest": [
        {"name": "holder", "type": "address"},
        {"name": "assetId", "type": "bytes32"},
        {"name": "action", "type": "string"},
        {"name": "nonce", "type": "uint256"},
        {"name": "expiry", "type": "uint256"},
    ]
}
_DOMAIN_TYPE = b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
_VOUCHER_TYPE = b"Voucher(bytes32 channelId,uint256 amount)"
_ACCESS_TYPE = b"AccessRequest(address holder,bytes32 assetId,string action,uint256 nonce,uint256 expiry)"


def domain_separator(name: str, version: str, chain_id: int, verifying_contract: str) -> bytes:
    return keccak(
        keccak(_DOMAIN_TYPE) + keccak(name.encode()) + keccak(version.encode()) + chain_id.to_bytes(32, "big")
        + bytes(12) + bytes.fromhex(verifying_contract.removeprefix("0x"))
    )


def _digest(separator: bytes, struct_hash: bytes) -> bytes:
    return keccak(b"\x19\x01" + separator + struct_hash)


@dataclass(frozen=True)
class Voucher:
    """The payer's promise that the channel's recipient may claim ``amount`` in total (cumulative)."""

    channel_id: bytes
    amount: int
    signature: bytes = b""

    def digest(self, chain_id: int, channels_contract: str) -> bytes:
        struct = keccak(keccak(_VOUCHER_TYPE) + self.channel_id + self.amount.to_bytes(32, "big"))
        return _digest(domain_separator(CHANNELS_NAME, CHANNELS_VERSION, chain_id, channels_contract), struct)

    def sign(self, account: LocalAccount, chain_id: int, channels_contract: str) -> Voucher:
        sig = account.unsafe_sign_hash(self.digest(chain_id, channels_contract))
        return Voucher(self.channel_id, self.amount, bytes(sig.signature))

    def signer(self, chain_id: int, channels_contract: str) -> str:
        """The checksummed address that signed this voucher. Raises SignatureError."""
        return recover_signer_from_hash(self.digest(chain_id, channels_contract), self.signature)

    def to_json(self) -> dict[str, Any]:
        return {"channelId": "0x" + self.channel_id.hex(), "amount": str(self.amount), "signature": "0x" + self.signature.hex()}

    @classmethod
    def from_json(cls, obj: Any) -> Voucher:
        try:
            channel = bytes.fromhex(str(obj["channelId"]).removeprefix("0x"))
            amount = int(obj["amount"])
            sig = bytes.fromhex(str(obj["signature"]).removeprefix("0x"))
        except (KeyError, TypeError, ValueError) as e:
            raise InvalidInputError(f"malformed voucher: {e}") from e
        if len(channel) != 32 or amount < 0 or len(sig) != 65:
            raise InvalidInputError("malformed voucher: channelId must be 32 bytes, amount >= 0, signature 65 bytes")
        return cls(channel, amount, sig)


@dataclass(frozen=True)
class AccessRequest:
    """A token or licence holder asking a provider for ``action`` ("download", "infer") on ``asset_id``."""

    holder: str
    asset_id: bytes
    action: str
    nonce: int
    expiry: int  # unix seconds
    signature: bytes = b""

    def digest(self, chain_id: int, verifying_contract: str) -> bytes:
        struct = keccak(
            keccak(_ACCESS_TYPE) + bytes(12) + bytes.fromhex(self.holder.removeprefix("0x")) + self.asset_id
            + keccak(self.action.encode()) + self.nonce.to_bytes(32, "big") + self.expiry.to_bytes(32, "big")
        )
        return _digest(domain_separator(ACCESS_NAME, ACCESS_VERSION, chain_id, verifying_contract), struct)

    def sign(self, account: LocalAccount, chain_id: int, verifying_contract: str) -> AccessRequest:
        sig = account.unsafe_sign_hash(self.digest(chain_id, verifying_contract))
        return AccessRequest(self.holder, self.asset_id, self.action, self.nonce, self.expiry, bytes(sig.signature))

    def check(self, chain_id: int, verifying_contract: str, now: float | None = None) -> str:
        """Verify signature and expiry; return the holder. Raises SignatureError or InvalidInputError."""
        if (time.time() if now is None else now) > self.expiry:
            raise InvalidInputError(f"access request expired at {self.expiry}")
        signer = recover_signer_from_hash(self.digest(chain_id, verifying_contract), self.signature)
        if signer.lower() != self.holder.lower():
            raise SignatureError(f"access request signed by {signer}, not by the holder {self.holder}")
        return signer

    def to_json(self) -> dict[str, Any]:
        return {"holder": self.holder, "assetId": "0x" + self.asset_id.hex(), "action": self.action,
                "nonce": str(self.nonce), "expiry": str(self.expiry), "signature": "0x" + self.signature.hex()}

    @classmethod
    def from_json(cls, obj: Any) -> AccessRequest:
        try:
            req = cls(str(obj["holder"]), bytes.fromhex(str(obj["assetId"]).removeprefix("0x")), str(obj["action"]),
                      int(obj["nonce"]), int(obj["expiry"]), bytes.fromhex(str(obj["signature"]).removeprefix("0x")))
        except (KeyError, TypeError, ValueError) as e:
            raise InvalidInputError(f"malformed access request: {e}") from e
        if len(req.asset_id) != 32 or len(req.signature) != 65 or len(req.holder) != 42:
            raise InvalidInputError("malformed access request: holder, 32-byte assetId and 65-byte signature needed")
        return req
