"""The seeded, stratified train/validation split."""

import numpy as np


def split_train_val(examples, val_count=48, seed=0):
    """Seeded split stratified over categories: (train, val, note).

    With few images the validation set shrinks to at most a fifth of them (at least one when
    there are two or more), so most images stay for training; `note` says so, else it is ''.
    """
    n = len(examples)
    want = val_count
    limit = n // 5 if n >= 10 else min(1, n - 1)
    note = ""
    if want > limit:
        want = max(limit, 0)
        note = (
            f"only {n} training images: validation split shrunk from {val_count} to {want} "
            "so that most images stay for training"
        )
    rng = np.random.default_rng(seed)
    by_cat = {}
    for ex in sorted(examples, key=lambda e: e.name):
        by_cat.setdefault(ex.category, []).append(ex)
    cats = sorted(by_cat)
    # Largest-remainder apportionment keeps each category's share in the validation set.
    quotas = {c: want * len(by_cat[c]) / n for c in cats} if n else {}
    take = {c: int(q) for c, q in quotas.items()}
    for c in sorted(cats, key=lambda c: (-(quotas[c] - take[c]), c))[: want - sum(take.values())]:
        take[c] += 1
    train, val = [], []
    for c in cats:
        order = rng.permutation(len(by_cat[c]))
        chosen = {int(i) for i in order[: take[c]]}
        for i, ex in enumerate(by_cat[c]):
            (val if i in chosen else train).append(ex)
    return train, val, note
