"""The Hugging Face hub: hf:// paths and their cache, streaming shards, hub-side shard checks, BIOMEDICA's shard sets.

May import only the leaves (problems, console); everything else may import hub/.
"""
