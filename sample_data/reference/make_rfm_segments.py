"""Writes rfm_segments.csv: the named RFM segment of every (R, F, M) score cell.

The rules (docs/rules.md "Customer value: RFM"), first match wins, with FM = (F + M) // 2:
Champions R>=4 F>=2 FM>=4; Loyal R>=3 F>=2 FM>=3; Can't Lose Them R=1 FM>=4;
At Risk R<=2 FM>=3; New R=5 F=1; Promising R=4 F=1; Potential Loyalist R>=4;
Need Attention R=3 FM>=2; About to Sleep R=3; Hibernating R=2; Lost R=1.
Run: python3 sample_data/reference/make_rfm_segments.py (from the repository root).
"""

import csv
import pathlib


def segment(r: int, f: int, m: int) -> str:
    fm = (f + m) // 2
    rules = [
        ("Champions", r >= 4 and f >= 2 and fm >= 4),
        ("Loyal", r >= 3 and f >= 2 and fm >= 3),
        ("Can't Lose Them", r == 1 and fm >= 4),
        ("At Risk", r <= 2 and fm >= 3),
        ("New", r == 5 and f == 1),
        ("Promising", r == 4 and f == 1),
        ("Potential Loyalist", r >= 4),
        ("Need Attention", r == 3 and fm >= 2),
        ("About to Sleep", r == 3),
        ("Hibernating", r == 2),
        ("Lost", r == 1),
    ]
    return next(name for name, hit in rules if hit)


out = pathlib.Path(__file__).with_name("rfm_segments.csv")
with out.open("w", newline="") as f:
    w = csv.writer(f, lineterminator="\n")
    w.writerow(["r", "f", "m", "segment"])
    for r in range(1, 6):
        for fq in range(1, 6):
            for m in range(1, 6):
                w.writerow([r, fq, m, segment(r, fq, m)])
