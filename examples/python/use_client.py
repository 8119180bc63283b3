"""Makes `evidentsource_client` importable: the installed package if there is
one (`pip install 'clients/python[kafka]'`), else the repository's copy in
clients/python, which the examples then always match."""

import os
import sys

try:
    import evidentsource_client  # noqa: F401
except ImportError:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                    "..", "..", "clients", "python"))
