"""The contracts the features jobs and the worker share: the curated table, its snapshots, job arguments.

Standard library only: both Glue jobs get this package in their ``--extra-py-files`` code bundle.
"""
