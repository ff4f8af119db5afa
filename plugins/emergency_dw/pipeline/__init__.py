"""land (Parquet) -> validate (GX) -> quarantine -> load (warehouse) -> audit.

Import the submodules you need: this package itself imports nothing heavy, so DAG files stay fast.
"""
