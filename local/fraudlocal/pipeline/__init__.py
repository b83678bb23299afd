"""The local pipeline, end to end: records in event-time order (:mod:`.ordering`) on the
emulated Kinesis stream, the simulated schedule (:mod:`.clock`), the run (:mod:`.run`)
and what it produced (:mod:`.results`)."""
