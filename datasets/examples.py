"""Made-up support tickets, four classes, to try the pipeline on labeled texts of your own.

    python datasets/examples.py            # writes datasets/tickets.{csv,jsonl,parquet} and datasets/tickets/

The same 1,200 tickets in every form the download stage reads: a CSV with the
columns id, text, label (and channel, an extra column that travels along), the same
as JSON Lines and parquet, and as folders, tickets/<split>/<class>/<id>.txt, with
its own test split. Every text is generated from the word lists below: none comes
from a real dataset.
"""
from __future__ import annotations

import csv
import json
import random
import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent
TICKETS = 1200
WORDS = {
    "billing": ["invoice", "charged", "refund", "twice", "payment", "card", "bill", "price", "subscription", "receipt"],
    "bug": ["crash", "error", "freezes", "button", "broken", "update", "screen", "blank", "slow", "fails"],
    "login": ["password", "reset", "locked", "account", "sign", "code", "email", "verify", "username", "access"],
    "shipping": ["parcel", "delivery", "late", "tracking", "address", "courier", "arrived", "damaged", "box", "lost"],
}
FILLER = ["the", "my", "i", "it", "is", "was", "and", "please", "help", "today", "again", "since", "yesterday",
          "your", "app", "order", "thanks", "still", "not", "can't", "with", "a", "this", "week"]
CHANNELS = ["email", "chat", "phone"]


def ticket(rng: random.Random, label: str) -> str:
    others = [word for name, words in WORDS.items() if name != label for word in words]
    words = [rng.choice(FILLER) for _ in range(rng.randint(8, 20))]
    words += [rng.choice(WORDS[label]) for _ in range(rng.randint(2, 4))] + [rng.choice(others)]
    rng.shuffle(words)
    return " ".join(words).capitalize() + rng.choice([".", "!", "?", "..."])


def tickets(seed: int = 7) -> list[dict]:
    rng = random.Random(seed)
    return [
        {"id": number, "text": ticket(rng, label), "label": label, "channel": rng.choice(CHANNELS)}
        for number, label in enumerate(rng.choice(sorted(WORDS)) for _ in range(TICKETS))
    ]


def main() -> None:
    rows = tickets()
    with open(HERE / "tickets.csv", "w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=["id", "text", "label", "channel"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    with open(HERE / "tickets.jsonl", "w", encoding="utf-8") as stream:
        stream.writelines(json.dumps(row) + "\n" for row in rows)
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), HERE / "tickets.parquet")
    folders = HERE / "tickets"
    shutil.rmtree(folders, ignore_errors=True)
    for row in rows:
        split = "test" if row["id"] % 5 == 0 else "train"
        path = folders / split / row["label"] / f"{row['id']}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(row["text"] + "\n", encoding="utf-8")
    print(f"{len(rows)} tickets in {HERE}: tickets.csv, tickets.jsonl, tickets.parquet, tickets/")


if __name__ == "__main__":
    main()
