"""Healthcare: consent-gated access to a hospital's patient records, and a diagnosis model trained across hospitals.

    python examples/healthcare.py [--home DIR]

One ledgermind home plays a small consortium (one log, one embedded chain, an account per party):

1. A coordinator creates a federated training task on breast-cancer records (scikit-learn's bundled Wisconsin
   dataset) split across three hospitals, with a reward pool and a stake in the demo token.
2. Hospital 1 registers its share as private patient records (consent given, no personal data, as the
   registration's quality checks confirm), keeps them encrypted, mints them and sells 30-day research licences.
3. A research lab asks for the records without a licence and is refused by the hospital's access policy; with a
   licence it downloads them, and the copy verifies against the registered digest. Both decisions are
   statements signed by the hospital.
4. The hospitals train a diagnosis model together: only model updates leave them, every round is committed on
   chain and recorded in the log, and the model is registered with lineage to each hospital's records.
5. The model and its lineage verify against the log and the anchor on chain; each hospital claims its reward.
"""

from __future__ import annotations

import sys
from pathlib import Path

from _home import run_example
from ledgermind import Client
from ledgermind.access import AccessRefused
from ledgermind.access.serve import ProviderServer

TOKEN = 10**18  # the demo token has 18 decimals
DAY = 86400


def run(home: Path) -> bool:
    with Client(home) as coordinator:
        coordinator.faucet(amount=300 * TOKEN)
        task = coordinator.fed_create(dataset="breast_cancer", parties=3, rounds=3, reward_pool=300 * TOKEN,
                                      min_stake=10 * TOKEN)
        hospitals = [coordinator.new_account() for _ in task["partyFiles"]]
        lab = coordinator.new_account()
        coordinator.deploy(grant=hospitals)  # hospitals may mint their records as tokens
        for hospital in hospitals:
            coordinator.faucet(hospital, 10 * TOKEN)  # enough for the stake
        print(f"task {task['taskId']}: breast cancer records split across {len(hospitals)} hospitals")

    records = Path(task["partyFiles"][0])
    with Client(home, account=hospitals[0]) as hospital:
        data = hospital.register_dataset(records, name="hospital-1 patient records", source="Hospital 1",
                                         licence="research use under the patients' consent", consent=True,
                                         contains_pii=False)
        pii = [t for t in hospital.inspect(data.digest)["tables"] if t.get("pii")]
        print(f"hospital 1 registered {data.name!r} (consent, {len(pii)} tables with personal data found)")
        hospital.offer_dataset(data.digest, records)  # encrypted copy, served only to licence holders
        hospital.mint(data.digest)
        hospital.sell(data.digest, kind="licence", price=10**15, duration=30 * DAY)
        provider = hospital.provider([], datasets=True)
        with ProviderServer(provider.app) as server, hospital.acting_as(lab) as researcher:
            lab_folder = home / "lab"
            lab_folder.mkdir(exist_ok=True)
            try:
                researcher.download(data.digest, server.url, lab_folder)
                refused = 0  # served without a licence: the policy failed, and the run will say so
            except AccessRefused as e:
                refused = e.status
            print(f"lab without a licence: refused ({refused})" if refused else "lab without a licence: SERVED")
            researcher.buy(data.digest, kind="licence")
            copy = researcher.download(data.digest, server.url, lab_folder)
            copy_ok = researcher.verify(copy).ok
            print(f"lab with a 30-day licence: downloaded, copy verifies: {copy_ok}")
        provider.close()

    for hospital_account, path in zip(hospitals, task["partyFiles"]):
        with Client(home, account=hospital_account) as hospital:
            hospital.fed_join(task["taskId"], path)

    with Client(home) as coordinator:
        result = coordinator.fed_run(task["taskId"])
        accuracy = [r["validationAccuracy"] for r in result["rounds"]]
        model = result["model"]["id"]
        print(f"federated diagnosis model {model[:12]}: validation accuracy per round {accuracy}")
        lineage = coordinator.lineage(model)
        print(f"lineage: {len(lineage['parents'])} hospitals' records")
        coordinator.anchor()
        report = coordinator.verify(model)
        print(f"verify model: {'PASS' if report.ok else 'FAIL'} ({len(report.checks)} checks)")

    for hospital_account in hospitals:
        with Client(home, account=hospital_account) as hospital:
            paid = int(hospital.fed_claim(task["taskId"])["paid"])
            print(f"hospital {hospital_account[:10]} claimed {paid / TOKEN:.2f} tokens (stake + reward)")
    return report.ok and refused == 403 and copy_ok


if __name__ == "__main__":
    sys.exit(run_example(run, __doc__))
