"""Data on disk: synthetic demo data, and the CSV and webdataset-shard writers."""
