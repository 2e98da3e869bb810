"""A run folder <logs>/<name>/ and what is read from it: config, checkpoints, status, resuming, reports, weights by name.

May import models, data, hub and the leaves; never launch/ or above.
"""
