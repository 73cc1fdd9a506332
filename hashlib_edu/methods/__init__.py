"""The course's hashing methods, one module each.

Each module holds everything specific to its method -- network head if any, the loss (with
the paper's equation in its docstring), its targets, its default settings and recipe, and its
train function -- and imports only the shared core (never another method module):

* :mod:`~hashlib_edu.methods.baselines` -- LSH, PCA-ITQ, CCA-ITQ, KSH (scikit-learn style);
* :mod:`~hashlib_edu.methods.cnnbh` -- CNNBH (Guo & Li): a classifier with a code "knob";
* :mod:`~hashlib_edu.methods.dsh` -- DSH (Liu et al., CVPR 2016): a pairwise loss;
* :mod:`~hashlib_edu.methods.dpah` -- DPAH (Wang et al., WACV 2020): learnable class positions;
* :mod:`~hashlib_edu.methods.orthohash` -- OrthoHash (Hoe et al., NeurIPS 2021): one cosine
  loss towards fixed class targets.
"""
