"""The AI oracle: registered models answer on-chain requests with a commitment (model, input and output digests,
the log index of the signed decision), answers are disputed optimistically and wrong ones slashed; and its example
consumer, parametric insurance whose claims a registered model assesses.

- ``onchain``: web3 bindings of the AIOracle and Insurance contracts.
- ``runner``: running a registered model on a published input (the inference adapters), the decision it yields.
- ``service``: the oracle through a home: request, decide, serve, dispute, resolve, finalize, withdraw.
- ``insurance``: the claims model (trained on bundled data) and the insurance actions.
"""
