"""What this machine has and needs for training: driver and GPU probes, the PyTorch compatibility table, the checks.

Nothing here imports torch except `stack_checks.installed_checks`, and only when torch is installed.
May import only the leaves.
"""
