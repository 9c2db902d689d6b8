"""Intellectual property: works registered and minted as NFTs; every use of them, or of a model trained on them,
pays their owners a royalty.

    python examples/intellectual_property.py [--home DIR]

One ledgermind home holds two authors, a co-author, an AI studio and two customers (an account each; one log, one
embedded chain). The works are short text collections generated here from seeded word lists.

1. Each author registers a collection of poems (its digest is the work's identity) and mints it as an ERC-721
   token; the first collection was co-written and names its co-author.
2. The first author sells per-use access tokens of the collection; each sale pays the co-author 30%.
3. A studio trains a style model (which author wrote a line?) on both collections, registers it with its lineage
   and mints it; its per-use access tokens pay 20% to the current owners of the works it was trained on.
4. Customers buy uses; everyone withdraws exactly their share, and the sums add up to what customers paid.
5. The model and its lineage verify against the log and the anchor on chain.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import joblib
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from _home import run_example
from ledgermind import Client

PRICE = 10**15  # per use, in the native coin's smallest unit
WORDS = {
    "sea": "tide salt gull harbour wave shore drift foam anchor brine keel current".split(),
    "city": "neon tram asphalt tower siren alley rooftop subway glass crowd traffic concrete".split(),
}


SHARED = "night light rain moon river stone window road silence morning dream shadow".split()


def collection(path: Path, words: list[str], seed: int, lines: int = 80) -> list[str]:
    """Lines of six words, each from the author's own imagery with probability 0.3, else from imagery both share."""
    rng = random.Random(seed)
    text = [" ".join(rng.choice(words if rng.random() < 0.3 else SHARED) for _ in range(6)) for _ in range(lines)]
    path.write_text("\n".join(text) + "\n")
    return text


def run(home: Path) -> bool:
    files = home / "files"
    files.mkdir(parents=True, exist_ok=True)
    with Client(home) as platform:
        platform.account()  # the home's default account (created on first use) is the platform's; then the others
        author_a, author_b, coauthor, studio, *customers = [platform.new_account() for _ in range(6)]
        platform.deploy(grant=[author_a, author_b, studio])  # they may mint their works as tokens

    works, lines = {}, {}
    for account, theme, seed in [(author_a, "sea", 1), (author_b, "city", 2)]:
        path = files / f"{theme}-poems.txt"
        lines[theme] = collection(path, WORDS[theme], seed)
        with Client(home, account=account) as author:
            works[theme] = author.register_dataset(path, name=f"{theme} poems", licence="all rights reserved",
                                                   source=f"original work of {account}").digest
            author.mint(works[theme])
            if theme == "sea":  # co-written: every per-use sale pays the co-author 30%
                author.sell(works[theme], price=PRICE, contributors=[(coauthor, 3000)])
        print(f"{theme} poems registered and minted as token {works[theme][:12]} by {account[:10]}")

    with Client(home, account=studio) as lab:
        texts = lines["sea"] + lines["city"]
        labels = ["sea"] * len(lines["sea"]) + ["city"] * len(lines["city"])
        style = make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=1000)).fit(texts[::2], labels[::2])
        accuracy = style.score(texts[1::2], labels[1::2])
        joblib.dump(style, files / "style-model.joblib")
        model = lab.register_model(files / "style-model.joblib", trained_on=list(works.values()),
                                   metrics={"accuracy": accuracy}).digest
        lab.mint(model)
        lab.sell(model, price=PRICE, lineage_bps=2000)  # 10% to each work's owner on every use
        print(f"style model {model[:12]} (held-out accuracy {accuracy:.2f}) minted; uses pay the works' owners 20%")

    with Client(home, account=customers[0]) as reader:
        reader.buy(works["sea"], quantity=2)
    with Client(home, account=customers[1]) as app:
        app.buy(model, quantity=5)
    paid_in = 7 * PRICE

    collected = {}
    for who, account in [("author A", author_a), ("co-author", coauthor), ("author B", author_b), ("studio", studio)]:
        with Client(home, account=account) as owner:
            collected[who] = sum(int(w["amount"]) for w in owner.withdraw())
    print(f"customers paid {paid_in / 10**18:g} for 7 uses; withdrawn: "
          + ", ".join(f"{who} {amount / 10**18:g}" for who, amount in collected.items()))

    with Client(home) as platform:
        platform.anchor()
        report = platform.verify(model)
        print(f"verify style model and its lineage: {'PASS' if report.ok else 'FAIL'} ({len(report.checks)} checks)")
    return report.ok and sum(collected.values()) == paid_in


if __name__ == "__main__":
    sys.exit(run_example(run, __doc__))
