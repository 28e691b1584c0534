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
``feature_spec``       the model's input columns from its model.tar.gz
``baseline_job``       the baseline processing job's entry point ("suggest baseline")
``capture_lines``      capture files as bounded chunks of lines, orjson/json parsing, the quarantine
``capture_reader``     SageMaker data-capture JSONL -> feature columns (garbage lines quarantined)
``drift``              per-feature distances (L-inf / KS, PSI) and the Model Monitor checks
``violations``         constraint_violations.json: build and validate
``report``             the HTML report: per-feature plots, violations, real-time aggregates
``drift_job``          the drift processing job's entry point (SageMaker Processing or the local runner)
``capture_keys``       which capture objects belong to a window, from their keys (no I/O)
``policy``             consecutive drifted windows, cooldown, one retraining per drift episode
``steps``              plain functions the mlops_monitor DAG calls (window, code bundle, drift request, decision)
``baseline_steps``     the baseline's steps: cache check, the baseline job's request, swap-in
``traffic``            send normal or drifted traffic to an endpoint (demo, tests)
=====================  =====================================================================

The processing jobs' modules (statistics, baseline, feature_spec, baseline_job, capture_lines,
capture_reader, drift, violations, report, drift_job) need only numpy, pandas and pyarrow (orjson when
installed, else the standard library's json): they run in the sklearn
framework container (locally, the SageMaker runtime). ``steps``, ``baseline_steps``,
``capture_keys`` and ``policy`` run on the Airflow worker and import none of those.
"""
