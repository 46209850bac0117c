"""The traffic store and what stands on it: partitioned Parquet by day, streaming reads in time
order, narrowing filters, run info, checkpoints, quarantine reasons and the look-back a run
warms from. Adapters, the stack, replay, shadow and the simulator all build on this package;
it imports nothing of ours but ``domain``, ``errors`` and ``digest``."""
