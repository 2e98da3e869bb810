"""Whole jobs built from everything below: a training run on this machine, a SLURM job, a throughput measurement.

The top of the library: may import checks, launch, runs, models, data, hub, envinfo and the leaves;
only commands/ imports jobs/.
"""
