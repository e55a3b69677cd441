"""Gradient-boosted tree ensembles as flat arrays, evaluated with numba: the siRNA efficacy model's LightGBM
boosters without importing LightGBM (and scikit-learn behind it) at design time.

A forest is five arrays over all nodes of all trees (``feature`` = -1 marks a leaf, whose ``value`` is its
output; an internal node sends a row left when ``x[feature] <= threshold``, LightGBM's rule for numerical splits
of data without missing values) plus the root node of each tree. :func:`forest_from_lightgbm` converts a trained
booster (``booster.dump_model()``) at training time; the training script checks that both give the same
predictions.
"""

from __future__ import annotations

from typing import Any

import numba as nb
import numpy as np

FOREST_KEYS = ("feature", "threshold", "left", "right", "value", "roots")


@nb.njit(cache=True, nogil=True)
def _predict_forest(
    X: np.ndarray,
    feature: np.ndarray,
    threshold: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    value: np.ndarray,
    roots: np.ndarray,
) -> np.ndarray:
    """Sum of the leaf values each row reaches in every tree."""
    out = np.zeros(X.shape[0])
    for i in range(X.shape[0]):
        s = 0.0
        for r in range(roots.shape[0]):
            node = roots[r]
            while feature[node] >= 0:
                node = left[node] if X[i, feature[node]] <= threshold[node] else right[node]
            s += value[node]
        out[i] = s
    return out


def predict_forest(forest: dict[str, np.ndarray], X: np.ndarray) -> np.ndarray:
    """Raw score of a forest (regression: the prediction) for each row of ``X``."""
    return _predict_forest(np.ascontiguousarray(X, dtype=np.float64), *(forest[k] for k in FOREST_KEYS))


def forest_from_lightgbm(dump: dict[str, Any]) -> dict[str, np.ndarray]:
    """Flat arrays of a LightGBM model dump (``Booster.dump_model()``); numerical ``<=`` splits only."""
    feature: list[int] = []
    threshold: list[float] = []
    left: list[int] = []
    right: list[int] = []
    value: list[float] = []
    roots = []

    def add(node: dict[str, Any]) -> int:
        idx = len(feature)
        feature.append(-1)
        threshold.append(0.0)
        left.append(-1)
        right.append(-1)
        value.append(0.0)
        if "leaf_value" in node:
            value[idx] = float(node["leaf_value"])
            return idx
        if node.get("decision_type") != "<=":
            raise ValueError(f"unsupported split {node.get('decision_type')!r}")
        feature[idx] = int(node["split_feature"])
        threshold[idx] = float(node["threshold"])
        left[idx] = add(node["left_child"])
        right[idx] = add(node["right_child"])
        return idx

    for tree in dump["tree_info"]:
        roots.append(add(tree["tree_structure"]))
    return {
        "feature": np.array(feature, dtype=np.int32),
        "threshold": np.array(threshold, dtype=np.float64),
        "left": np.array(left, dtype=np.int32),
        "right": np.array(right, dtype=np.int32),
        "value": np.array(value, dtype=np.float64),
        "roots": np.array(roots, dtype=np.int32),
    }
