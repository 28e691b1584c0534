"""Real-time serving: a SageMaker-compatible model server, the endpoint router, data capture and
the local endpoint manager (the stand-in for SageMaker hosting).

Modules:

- :mod:`.handler`   load ``model.tar.gz`` and its ``code/inference.py`` (model_fn/input_fn/predict_fn/output_fn)
- :mod:`.errors`    exceptions a handler raises and the HTTP status each maps to
- :mod:`.app`       the ASGI front: /ping, /invocations, /endpoints/{name}/invocations
- :mod:`.server`    one model server process (a variant's container)
- :mod:`.multimodel` a ``Mode: MultiModel`` container: target models loaded on first use, LRU-bounded
- :mod:`.ab_decision` the A/B rule: promote the challenger or keep the champion, and why
- :mod:`.router`    the endpoint's stable address: weighted variants, target-variant, capture
- :mod:`.capture`   SageMaker data-capture JSONL and key layout
- :mod:`.bluegreen` DeploymentConfig traffic plans and the rollback alarm
- :mod:`.manager`   LocalSageMaker: Create/Update/Delete/Describe models, configs, endpoints
- :mod:`.runtime`   plain functions for the CLI and the demo (list, invoke, delete, summary)
"""
