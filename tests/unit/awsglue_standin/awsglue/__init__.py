"""A stand-in for AWS Glue's ``awsglue`` package (tests put its parent folder on ``sys.path``).

Only ``awsglue.utils.getResolvedOptions`` and ``GlueArgumentError``, written from Glue's
documentation ("Accessing parameters using getResolvedOptions") and the behaviour of the
published ``aws-glue-libs`` script library, so the job scripts' Glue branch runs in tests.
"""
