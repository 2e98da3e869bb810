"""`bmclip prepare-csv`'s pipeline: sources read as rows, image checks, destinations (CSV and shards), and the rejects."""
