"""fraudlocal: the local stack (embedded stores, Kinesis emulation, ASL executor) and its CLI."""
