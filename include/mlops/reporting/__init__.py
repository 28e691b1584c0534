"""Real-time reporting: a Lambda-style handler aggregates prediction and event records per minute.

``mlops.reporting.handler.handler(event, context)`` (alias ``handle``, the Lambda's handler path
in ``infra/cfn/reporting.yaml``) takes an SQS batch (the production wiring), a list of records,
or one record, and adds per-minute counters with UpdateItem ``ADD`` requests built as data
(:mod:`mlops.reporting.requests`). The same requests go to DynamoDB (``METRICS_TABLE`` set, as on
the Lambda) or to a SQLite table that executes them (local). Modules here import only the
standard library (boto3 when DynamoDB or SQS is used), so the package runs on the Lambda runtime.
"""
