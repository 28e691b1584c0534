"""Drift monitoring over captured endpoint traffic, in SageMaker Model Monitor's file formats.

Model Monitor is closed to new customers, so this package is our own monitor. It writes
Model-Monitor-shaped ``statistics.json`` and ``constraints.json`` (the baseline, from a model's
training data) and ``constraint_violations.json`` (per window of captured traffic), so tools that
read Model Monitor output read ours.

=====================  =====================================================================
module                 responsibility
=====================  =====================================================================
``statistics``         Deequ-style per-feature statistics (KLL sketch, 10 buckets, categories)
``baseline``           statistics.json + constraints.json from training data
``capture_reader``     SageMaker data-capture JSONL -> feature frame, window object selection
``drift``              per-feature distances (L-inf / KS, PSI) and the Model Monitor checks
``violations``         constraint_violations.json: build and validate
``report``             the HTML report: per-feature plots, violations, real-time aggregates
``drift_job``          the processing-job entry point (SageMaker Processing or the local runner)
``policy``             consecutive drifted windows, cooldown, one retraining per drift episode
``steps``              plain functions the mlops_monitor DAG calls (window, baseline, request)
``traffic``            send normal or drifted traffic to an endpoint (demo, tests)
=====================  =====================================================================

Modules the processing job imports (statistics, capture_reader, drift, violations, report,
drift_job) need only numpy and pandas: they run in the sklearn framework container.
"""
