"""Batch work on Spark (`local[*]` or a cluster): iALS, item co-occurrence and batch top-k over
the store's Parquet export, written in the artifact format the service loads."""
