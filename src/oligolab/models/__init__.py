"""Trained models shipped with oligolab: versioned weights next to their loaders, loaded lazily and offline
(docs/models.md; the training scripts are in scripts/).

* :mod:`.cas12a`: Cas12a crRNA activity from the 34-nt target context (numpy forward pass of a CNN ensemble,
  ``cas12a_activity_v1.npz`` + ``.json``), used by ``design``'s guide scoring;
* :mod:`.sirna_efficacy`: siRNA knock-down efficacy (features of the duplex and its site, the trained ensemble,
  ``sirna_efficacy_v2.npz`` + ``.json``), used by ``sirna``; :mod:`.sirna_efficacy_trees`: its gradient-boosted
  trees as flat arrays evaluated with numba (no LightGBM at run time).
"""
