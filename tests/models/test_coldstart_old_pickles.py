"""A ColdStartScorer pickled before ``description`` and ``frequency_quantile`` existed still describes itself."""

from __future__ import annotations

import pickle

import numpy as np
from hash_fakes import HashEncoder

from models.coldstart import ColdStartScorer

LEVELS = [0, 1, 2]
DESCRIPTORS = [["no answer"], ["mentions feedback"], ["explains feedback with several examples"]]



def test_an_old_pickle_without_the_new_attributes_reprs_and_scores() -> None:
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(["feedback", "examples", "explains", "bus", "late", "the", "students"], 6)) + f" {i}"
             for i in range(60)]
    enc = HashEncoder()
    sc = ColdStartScorer(levels=LEVELS, level_texts=DESCRIPTORS, encoder=enc, signals=("descriptors", "elaboration"))
    sc.fit(texts)
    want = sc.predict_proba(texts)
    # as saved by the first release: no description, no frequency signal, and the signals read from the
    # ``signals`` parameter (a tuple then; "auto" and the fitted ``signals_`` came with the frequency signal)
    del sc.__dict__["description"], sc.__dict__["frequency_quantile"], sc.__dict__["signals_"]
    old = pickle.loads(pickle.dumps(sc))
    old.encoder = enc
    assert "ColdStartScorer" in repr(old)
    params = old.get_params()
    assert params["description"] == "" and params["frequency_quantile"] == 0.98
    np.testing.assert_allclose(old.predict_proba(texts), want)
    assert old.look_for() and "signals" in old.describe()
