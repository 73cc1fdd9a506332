"""hashlib_edu: a hands-on course on deep hashing for image retrieval.

Modules, bottom to top (each imports only modules above it in this list):

Shared core
    ``profiles``   run profiles (smoke / quick / paper) and where outputs go;
    ``release``    the course's trained models as a downloadable bundle (pack, verified fetch);
    ``data``       CIFAR-10 in memory, the retrieval protocols (``load_protocol``), the
                   validation split settings are chosen on;
    ``codes``      binary codes: signs, packing, the quantization error, code constructions
                   (Bernoulli, Hadamard) with large distances;
    ``hamming``    the Hamming kernel: codes checked and packed into 64-bit words, distances
                   by XOR + popcount (``hamming_distance``);
    ``metrics``    mAP (stable and tie-aware), P@H<=2, PR curves, P@N, and every headline
                   metric in one pass (``evaluate_retrieval``);
    ``index``      exact Hamming search (``HammingIndex``) and one query's ranked list;
    ``backbones``  the small CIFAR backbone, backbone + code layer, pretrained backbones;
    ``training``   batch transforms, ``BatchLoader``, ``fit``, ``encode``, recipes and
                   checkpointed training;
    ``activations`` a pretrained backbone's activations at a cut, computed once and cached;
    ``losses``     what every method's loss shares: labels and pair similarity, input
                   checks, the ``HashingLoss`` base;
    ``results``    the results writer and reader (``results/<protocol>/*.json`` + codes);
    ``features``   hand-crafted image features (pixels, GIST-like, HOG) for the baselines;
    ``analysis``   code-space diagnostics (intra/inter-class distances, BatchNorm statistics);
    ``plots``      every figure of the course.
Methods (``hashlib_edu.methods``; each imports only the core)
    ``baselines`` (LSH, PCA-ITQ, CCA-ITQ, KSH), ``cnnbh``, ``dsh``, ``dpah``, ``orthohash``.
On top
    ``exercises``  checkers for the notebooks' exercises, with mistake-specific hints (one
                   module per notebook over the shared ``checking`` helpers);
    ``explorer``   the interactive retrieval explorer of notebook 07;
    ``report``     reads results, writes the README tables and comparison figures;
    ``reproduce``  the command line that trains and evaluates every method (one registry);
    ``course``     runs the notebooks under a profile.

The names a notebook uses every time (set-up, data, training, evaluation) are importable
from the package itself, e.g. ``from hashlib_edu import load_protocol, encode``.
"""

from ._version import REPO_URL, __version__  # noqa: F401 (the course's address and version)
from .backbones import BackboneWithCodeLayer, SmallBackbone, count_parameters  # noqa: E402
from .claims import claim  # noqa: E402
from .codes import (  # noqa: E402
    bernoulli_targets,
    concatenate_codes,
    hadamard_targets,
    min_hamming_distance,
    sign,
)
from .data import CIFAR10_CLASSES, load_protocol, validation_protocol, validation_split  # noqa: E402
from .experiment import Experiment, run, saved_or_run  # noqa: E402
from .index import HammingIndex, retrieve  # noqa: E402
from .metrics import (  # noqa: E402
    euclidean_precision_at_n,
    hamming_distance,
    mean_average_precision,
    precision_at_n_curve,
    precision_recall_curve,
    precision_within_radius,
)
from .profiles import training_plan, use_profile, use_training  # noqa: E402
from .recipes import Recipe  # noqa: E402
from .regimes import choose_backbone  # noqa: E402
from .results import (  # noqa: E402
    codes_path,
    evaluate_codes,
    load_codes,
    load_results,
    save_results,
)
from .training import (  # noqa: E402
    BatchLoader,
    backbone_features,
    embed,
    encode,
    fit,
    seed_everything,
    select_device,
)

__all__ = [
    "REPO_URL", "Experiment", "run", "saved_or_run", "claim", "BackboneWithCodeLayer", "SmallBackbone", "count_parameters",
    "bernoulli_targets", "concatenate_codes", "hadamard_targets", "min_hamming_distance", "sign", "CIFAR10_CLASSES", "load_protocol", "validation_protocol", "validation_split",
    "HammingIndex", "retrieve", "euclidean_precision_at_n", "hamming_distance",
    "mean_average_precision", "precision_at_n_curve", "precision_recall_curve",
    "precision_within_radius", "training_plan", "use_profile", "use_training", "codes_path", "evaluate_codes", "load_codes",
    "load_results", "save_results", "BatchLoader", "Recipe", "fit", "backbone_features",
    "choose_backbone", "embed", "encode", "seed_everything", "select_device",
]
