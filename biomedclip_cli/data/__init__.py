"""Training data on disk: what a data option names, CSV and shard inspection, CSV and shard writers, demo data, prepare-csv.

May import hub and the leaves.
"""
