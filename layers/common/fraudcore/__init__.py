"""fraudcore: the domain logic and the AWS adapters of the fraud-detection system.

Handlers in ``functions/`` are thin: they read their event, call one function here and
shape the response. All I/O goes through the ports in :mod:`fraudcore.ports`.
"""

__version__ = "0.1.0"
