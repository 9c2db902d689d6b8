"""Recovering voucher signers without holding up the event loop: in a child process, a batch per loop turn.

Recovering the signer of a voucher (secp256k1 public-key recovery over its EIP-712 digest, then keccak of the
key) is the most expensive step of a paid request: ~50 us alone, ~70 us amid the server's other work, whose
caches it evicts, and on the event loop it delays every other request by that much. A worker thread does not
help: libsecp256k1 runs without the GIL, but each of the three calls one recovery makes through coincurve gives
the GIL up and must win it back from the loop, so under load the thread waits ~250 us per signature and the
loop loses ~60 us to the switching (measured with bench/bench_inference.py).

So a child process recovers them, and the event loop talks to it directly, without another thread: the
signatures queued during one loop turn are written to the child's stdin at once, as fixed-size records
(digest || r || s || recovery id), and the child answers each, in order, with a fixed-size record (a status
byte, the 20-byte address, and the digest it answers, which the loop checks). The loop reads the answers as
they arrive and hands each caller its own: a few microseconds per signature. One batch is at the child at a
time; what arrives meanwhile waits and goes as the next one, so under load each write to the child (and each
wake-up of it, which costs a virtual machine dearly) carries many signatures. If the child cannot be started,
dies or answers out of turn, it is stopped and the signatures it had are recovered on the loop (slower,
equally correct); after a few failures the loop recovers every signature itself. The child only computes:
the caller still compares each recovered address with the channel's sender before accepting anything
(``channels.ProviderChannels``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from collections import deque
from collections.abc import Iterable
from pathlib import Path

import coincurve

from ledgermind.errors import SignatureError
from ledgermind.statements.dsse import keccak

log = logging.getLogger("ledgermind.inference")

# half the secp256k1 order, big-endian: s above it is malleable (32-byte strings compare as the numbers do)
_HALF_N = (0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141 // 2).to_bytes(32, "big")
_RECORD = 32 + 65  # one signature for the child: digest || r || s || recovery id (0 or 1)
_ANSWER = 1 + 20 + 32  # its answer: 0 (or 1: no key recovers from it), the address (or zeros), the digest
_MAX_FAILURES = 3  # children that may fail before a loop recovers signatures itself for good
_NO_KEY = "signature does not recover a public key"

_Item = tuple[bytes, bytes, "asyncio.Future[bytes]"]  # digest, normalised signature, who waits for the address


# ---------------------------------------------------------------------- recovering one signature
def normalise(signature: bytes) -> bytes:
    """``signature`` (65 bytes ``r || s || v``, v in {0, 1, 27, 28}) with v as 0 or 1: what libsecp256k1 takes.

    Raises SignatureError for a malformed signature or a malleable one (s in the upper half of the curve
    order), as ``statements.recover_signer_from_hash`` does.
    """
    if len(signature) != 65:
        raise SignatureError(f"signature has {len(signature)} bytes, expected 65 (r || s || v)")
    v = signature[64]
    v = v - 27 if v >= 27 else v
    if v not in (0, 1):
        raise SignatureError(f"signature recovery id v={signature[64]} is not 27 or 28")
    if signature[32:64] > _HALF_N:
        raise SignatureError("signature is malleable (s in the upper half of the curve order)")
    return signature if signature[64] == v else signature[:64] + bytes((v,))


def _recover_normalised(digest: bytes, signature: bytes) -> bytes:
    """The 20-byte address of the key that made ``signature`` (normalised) over ``digest``. Raises SignatureError."""
    try:
        pub = coincurve.PublicKey.from_signature_and_message(signature, digest, hasher=None)
    except Exception as e:  # coincurve raises plain Exception on invalid points
        raise SignatureError(f"{_NO_KEY}: {e}") from e
    return keccak(pub.format(compressed=False)[1:])[12:]


def recover_address(digest: bytes, signature: bytes) -> bytes:
    """The 20-byte address whose key signed the 32-byte ``digest``: what ``recover_signer_from_hash``
    checksums, with the same checks. Raises SignatureError."""
    return _recover_normalised(digest, normalise(signature))


def _recover_here(items: Iterable[_Item]) -> None:
    """Recover ``items`` on this thread and hand each waiting future its result."""
    for digest, signature, fut in items:
        if fut.done():  # its request was cancelled meanwhile
            continue
        try:
            fut.set_result(_recover_normalised(digest, signature))
        except SignatureError as e:
            fut.set_exception(e)


# ---------------------------------------------------------------------- the child process
def child_main() -> None:
    """The child's loop: answer the records arriving on stdin, in order, until stdin ends (the parent is gone)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the parent decides
    sys.stdout = sys.stderr  # nothing but answers may reach fd 1
    no_key = b"\x01" + bytes(20)
    pending = b""
    while True:
        data = os.read(0, 1 << 16)
        if not data:
            return
        pending += data
        whole = len(pending) - len(pending) % _RECORD
        answers = bytearray()
        for i in range(0, whole, _RECORD):
            digest = pending[i : i + 32]
            try:
                answers += b"\x00" + _recover_normalised(digest, pending[i + 32 : i + _RECORD]) + digest
            except SignatureError:
                answers += no_key + digest
        pending = pending[whole:]
        view = memoryview(answers)
        while view:
            view = view[os.write(1, view) :]


def _child_program() -> str:
    """What the child runs (``python -c``). It imports ledgermind from where this process did, whatever sys.path
    or PYTHONPATH say."""
    root = str(Path(__file__).resolve().parents[2])
    return f"import sys; sys.path.insert(0, {root!r}); from ledgermind.inference.recovery import child_main; child_main()"


def _spawn() -> subprocess.Popen[bytes]:
    """Start a child, with non-blocking pipes. Raises OSError if it cannot be started."""
    if not sys.executable:
        raise OSError("no Python executable to run it with")
    child = subprocess.Popen([sys.executable, "-c", _child_program()], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             bufsize=0)
    assert child.stdin is not None and child.stdout is not None
    try:
        os.set_blocking(child.stdin.fileno(), False)  # the loop never waits on the child: it buffers instead
        os.set_blocking(child.stdout.fileno(), False)
    except OSError:
        _stop(child)
        raise
    return child


def _stop(child: subprocess.Popen[bytes]) -> None:
    child.kill()  # it keeps no state: nothing to finish
    child.wait()
    for pipe in (child.stdin, child.stdout):
        if pipe is not None:
            pipe.close()


# ---------------------------------------------------------------------- the event loop's side
class LoopRecovery:
    """Recovers signers for one event loop through a child process (see the module docstring).

    Get it with ``for_loop()``; every method runs on the loop's thread.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.failures = 0
        self._closed = False
        self._child: subprocess.Popen[bytes] | None = None
        self._queued: list[_Item] = []  # to write: this turn's, or those that came while the child worked
        self._sent: deque[_Item] = deque()  # written to the child, not answered yet, in order
        self._out = bytearray()  # written records the pipe had no room for yet
        self._in = b""  # the start of an answer whose end has not arrived yet

    async def address(self, digest: bytes, signature: bytes) -> bytes:
        """The 20-byte address whose key signed the 32-byte ``digest`` (see ``recover_address``).

        Raises SignatureError; at once, without queueing it, for a malformed or malleable signature."""
        signature = normalise(signature)
        fut: asyncio.Future[bytes] = self.loop.create_future()
        if not self._queued and not self._sent:  # else the answers to the batch at the child will flush it
            self.loop.call_soon(self._flush)  # after the other requests of this turn have queued theirs
        self._queued.append((digest, signature, fut))
        return await fut

    def start(self) -> None:
        """Start the child now, so that the first signatures do not wait for it to start."""
        if self._child is None and not self._closed:
            self._start()

    def close(self) -> None:
        """Stop the child; what it had not answered, and anything queued later, is recovered on the loop."""
        self._closed = True
        self._drop_child()

    def _flush(self) -> None:
        batch, self._queued = self._queued, []
        if not batch:
            return
        child = self._child or self._start()
        if child is None:
            _recover_here(batch)
            return
        self._sent.extend(batch)
        self._out += b"".join(digest + signature for digest, signature, _ in batch)
        self._write()

    def _start(self) -> subprocess.Popen[bytes] | None:
        if self._closed or self.failures >= _MAX_FAILURES:
            return None
        try:
            child = _spawn()
        except OSError as e:
            self._failed(f"cannot start the voucher recovery process ({e})")
            return None
        assert child.stdout is not None
        try:
            self.loop.add_reader(child.stdout.fileno(), self._read)
        except NotImplementedError:  # an event loop that cannot watch pipes (Windows' proactor)
            _stop(child)
            self.failures = _MAX_FAILURES
            return None
        self._child = child
        return child

    def _write(self) -> None:
        assert self._child is not None and self._child.stdin is not None
        fd = self._child.stdin.fileno()
        try:
            done = os.write(fd, self._out)
        except BlockingIOError:
            done = 0
        except OSError as e:  # the child is gone
            self._failed(f"the voucher recovery process failed ({e})")
            return
        del self._out[:done]
        if self._out:
            self.loop.add_writer(fd, self._write)  # the pipe is full: go on when the child has read some
        else:
            self.loop.remove_writer(fd)

    def _read(self) -> None:
        assert self._child is not None and self._child.stdout is not None
        try:
            data = os.read(self._child.stdout.fileno(), 1 << 16)
        except BlockingIOError:
            return
        except OSError as e:
            self._failed(f"the voucher recovery process failed ({e})")
            return
        if not data:
            self._failed("the voucher recovery process exited")
            return
        data = self._in + data if self._in else data
        whole = len(data) - len(data) % _ANSWER
        if whole // _ANSWER > len(self._sent):
            self._failed("the voucher recovery process answered more than it was asked")
            return
        for i in range(0, whole, _ANSWER):
            digest, _, fut = self._sent[0]
            if data[i + 21 : i + _ANSWER] != digest:  # never hand a caller another signature's signer
                self._failed("the voucher recovery process answered out of turn")
                return
            self._sent.popleft()
            if fut.done():  # its request was cancelled meanwhile
                continue
            if data[i] == 0:
                fut.set_result(data[i + 1 : i + 21])
            else:
                fut.set_exception(SignatureError(_NO_KEY))
        self._in = data[whole:]
        if not self._sent and self._queued:  # the child is done: send what gathered meanwhile
            self._flush()

    def _failed(self, reason: str) -> None:
        self.failures += 1
        after = "recovering on the event loop from now on" if self.failures >= _MAX_FAILURES else "starting another"
        log.warning("%s: %s", reason, after)
        self._drop_child()

    def _drop_child(self) -> None:
        """Stop the child, if any; recover on the loop what it had not answered, and send on what waited."""
        child, self._child = self._child, None
        if child is not None:
            assert child.stdin is not None and child.stdout is not None
            self.loop.remove_reader(child.stdout.fileno())
            self.loop.remove_writer(child.stdin.fileno())
            _stop(child)
        self._out.clear()
        self._in = b""
        sent, self._sent = self._sent, deque()
        if not self.loop.is_closed():  # on a closed loop nobody waits any more
            _recover_here(sent)
            if self._queued:  # they were waiting for the child's answers
                self.loop.call_soon(self._flush)


_loops: dict[asyncio.AbstractEventLoop, LoopRecovery] = {}


def for_loop(loop: asyncio.AbstractEventLoop | None = None) -> LoopRecovery:
    """The LoopRecovery of ``loop`` (default: the running one), made on first use."""
    loop = loop or asyncio.get_running_loop()
    rec = _loops.get(loop)
    if rec is None:
        for old in list(_loops):  # forget the loops that were closed, and stop their children
            if old.is_closed() and (gone := _loops.pop(old, None)) is not None:
                gone.close()
        rec = _loops[loop] = LoopRecovery(loop)
    return rec


def close_loop(loop: asyncio.AbstractEventLoop | None = None) -> None:
    """Stop the child of ``loop`` (default: the running one), if it has one: a server shutting down."""
    rec = _loops.pop(loop or asyncio.get_running_loop(), None)
    if rec is not None:
        rec.close()
