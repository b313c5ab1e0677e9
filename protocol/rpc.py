"""The rpyc settings of both ends of the scheduler → worker call.

No attribute access, no pickling, no remote exception classes: only the exposed methods answer.
"""

from __future__ import annotations

SAFE_RPYC_CONFIG = {
    "allow_public_attrs": False,
    "allow_all_attrs": False,
    "allow_pickle": False,
    "allow_setattr": False,
    "allow_delattr": False,
    "import_custom_exceptions": False,
    "instantiate_custom_exceptions": False,
}
