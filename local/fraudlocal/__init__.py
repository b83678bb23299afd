"""fraudlocal: the local stack (embedded stores, Kinesis emulation, ASL executor) and its CLI.

Importing it registers the local adapters with :mod:`fraudcore.backends`.
"""

from .adapters import register as _register_local_adapters

_register_local_adapters()
