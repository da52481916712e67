"""rec_cooc: an item co-occurrence recommender evaluated with recspectrum as a plug-in.

The package declares itself in the ``recspectrum.plugins`` entry-point group (see
``pyproject.toml``), so ``bench`` may build ``rec_cooc.models.Cooccurrence`` from a config
and finds the model and experiment configs in ``rec_cooc/configs/``.
"""

__all__ = ["Cooccurrence"]

from rec_cooc.models import Cooccurrence
