"""The shipped Cas12a guide-activity model: it reproduces its recorded held-out figure and validates input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from oligolab.models import cas12a
from oligolab.models.cas12a import predict_cas12a_activity

ROOT = Path(__file__).resolve().parents[1]
TEST_FILE = ROOT / "data" / "cas12a-activity" / "Kim_2018_Test.csv.xz"

# Floor for held-out Spearman on the shipped HT 1-2 file: under 5-fold CV on HT 1-1 the shipped recipe scores
# 0.772 +/- 0.009 and the simpler baselines it beat score 0.747 (LightGBM on one-hot + dinucleotides) and
# 0.760 (plain Seq-deepCpf1 layout); 0.75 (CV mean minus about 2 sd) fails a model that has fallen to baseline
# level, while a broken export (wrong flatten order, feature drift) lands far lower.
SPEARMAN_FLOOR = 0.75

GOOD = "TGCGCGAGCGTTTAAAAAACATCGAACGCATCTG"  # 34 nt: 4 + TTTA + 23 + 3


def _read_test() -> pd.DataFrame:
    df = pd.read_csv(TEST_FILE, encoding="utf-8-sig")
    norm = {" ".join(str(c).split()): c for c in df.columns}
    return pd.DataFrame({"context": df[norm["Context Sequence"]], "indel_pct": df[norm["Indel frequency"]]})


def test_held_out_spearman_reproduces_recorded_figure():
    test = _read_test()
    pred = predict_cas12a_activity(test.context.tolist())
    rho = pd.Series(pred).corr(test.indel_pct, method="spearman")
    r = pd.Series(pred).corr(test.indel_pct, method="pearson")
    held = cas12a.MODEL_INFO["held_out"]
    assert held["n"] == len(test)
    assert abs(rho - held["spearman"]) <= 0.005
    assert abs(r - held["pearson"]) <= 0.005
    assert rho > SPEARMAN_FLOOR


def test_model_info_records_training_and_anchor():
    info = cas12a.MODEL_INFO
    assert info["name"] == "cas12a_activity_v1"
    assert info["training_rows"] == 15000
    assert 0.5 < info["cv"]["spearman_mean"] < 1.0 and info["cv"]["spearman_sd"] >= 0
    assert info["anchor"]["spearman"] == 0.87
    assert "train_cas12a_model.py" in info["reproduce"]


def test_predictions_shape_range_and_determinism():
    ctx = [GOOD, GOOD.replace("TTTA", "TTTC", 1), GOOD]
    p = predict_cas12a_activity(ctx)
    assert p.shape == (3,) and p.dtype == np.float64
    assert np.all((p >= 0) & (p <= 100))
    # same context, same prediction whatever the batch (to float32 precision)
    assert p[0] == pytest.approx(p[2], rel=1e-5)
    assert predict_cas12a_activity(ctx[:1])[0] == pytest.approx(p[0], rel=1e-5)
    assert predict_cas12a_activity([]).shape == (0,)


@pytest.mark.parametrize("bad, index, words", [
    ([GOOD, GOOD[:-1]], 1, "length 33"),
    ([GOOD, GOOD, GOOD + "A"], 2, "length 35"),
    ([GOOD[:-1] + "N"], 0, "letters"),
    ([GOOD, GOOD.lower()], 1, "letters"),
    ([GOOD, GOOD[:-1] + "U"], 1, "letters"),
    ([GOOD, GOOD[:-1] + "é"], 1, "ACGT"),
    ([GOOD, None], 1, "expected str"),
])
def test_invalid_contexts_name_the_index(bad, index, words):
    with pytest.raises(ValueError, match=rf"index {index}\b.*{words}|{words}.*index {index}\b"):
        predict_cas12a_activity(bad)


def test_single_string_is_rejected():
    with pytest.raises(ValueError, match="sequence of 34-nt strings"):
        predict_cas12a_activity(GOOD)


def test_hairpin_energy_proxy_sees_a_stem_loop():
    hairpin = "GGGGCCAAAAGGCCCCAAAAAAA"  # 4-bp GC stem + ... : strongly negative
    flat = "AAAAAAAAAAAAAAAAAAAAAAA"
    e = cas12a.hairpin_energy(cas12a.encode_contexts([hairpin + "A" * 11, flat + "A" * 11])[:, :23])
    assert e[0] < -3.0 and e[1] == 0.0


def test_inference_does_not_import_torch():
    code = ("import sys; from oligolab.models.cas12a import predict_cas12a_activity as p; "
            f"p(['{GOOD}']); assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT,
                   env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"})
