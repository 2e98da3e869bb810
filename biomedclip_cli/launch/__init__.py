"""From a resolved TrainConfig to running ranks: open_clip's argv, launcher command lines, presets, and the worker in each rank.

openclip_args.py is the only module that knows open_clip's flags, launcher.py the only one that
builds torchrun and srun words. May import runs, models, data, hub and the leaves; the worker
imports only what a rank needs.
"""
