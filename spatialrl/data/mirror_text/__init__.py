"""Mirror a QA dataset that has no scene graph (SVQA-R1 sec. 3.1): see :mod:`.rules`."""

from spatialrl.data.mirror_text.rules import *  # noqa: F403
from spatialrl.data.mirror_text.rules import REASONS, __all__, _safe_url  # noqa: F401
