"""Models a run starts from: the catalog, JSON configs and where they are found, facts, pretrained tags, checks, evaluation.

Nothing here imports torch at module level. May import data, hub and the leaves.
"""
