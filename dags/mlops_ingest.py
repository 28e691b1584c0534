"""
### mlops_ingest — DMS replication checks

The first stage of the loop: the relational source DB is replicated by **AWS DMS** (full load,
then CDC) into the lake's `raw/dms/<schema>/<table>/` prefix (`LOAD*.parquet`, then CDC files in
`YYYY/MM/DD/` folders). DMS also **validates** the replicated data: it compares every source row
with its copy in the lake and reports per table. This DAG checks that the replication is healthy
and that DMS's validation vouches for every table, then emits the `mlops_raw_data` Asset that
schedules `mlops_features`. It never connects to the source DB nor reads a table itself.

| task | aws | local |
|---|---|---|
| `dms_sync` | `DmsTaskBaseSensor` waits for `running` (CDC) or `stopped` (full load done); with `reload_tables` it first calls DMS ReloadTables and waits for those tables | the local DMS stand-in reloads `reload_tables`, then does the full load or applies CDC batches until caught up, then validates every table against the source |
| `check_replication` | DescribeReplicationTasks, DescribeTableStatistics, CloudWatch CDC latency, S3 listing (boto3); content queries on Athena | the stand-in's published status and quarantine, the lake listing; content queries on the local Athena stand-in |

Checks: task status acceptable; full load 100 % with no errored tables; every expected table
completed; **data validation**: no failed or suspended records, and the table `Validated` (or
awaiting validation for at most `max_validation_pending_seconds`, default 26 h: DMS validates
CDC changes on S3 targets once a day at 00:00 UTC); CDC lag under the bound; **the source's
changes arrived** (below); nothing quarantined is still missing from the lake (local); the lake's
content (Athena SQL over `raw_<table>`): NULL rates per column, no duplicate (key, change
sequence), the expected columns, every object readable. A failed check names the table and the
metric (for mismatches also DMS's `ValidationStateDetails`, locally the keys and columns that
differ). A schema change CDC cannot apply names the fix: trigger this DAG with
`reload_tables` = `["orders"]` (or `["*"]` for every table).

**Freshness is judged from the source's own change activity, so an idle source stays green.**
Per table, DMS's table statistics count the changes it captured from the source
(`Inserts`/`Updates`/`Deletes`/`Ddls`) apart from those it applied to the lake (`Applied*`); locally
the DMS stand-in counts the changes still waiting in the source's change log the same way. A run
fails only when changes that exist did not arrive within the lag budget
(`replication.max_cdc_lag_seconds`, Param `max_cdc_lag_seconds`): changes waiting while the CDC lag
(`CDCLatencySource` + `CDCLatencyTarget`; locally the oldest waiting change's age) exceeds the
budget, naming the table and the count, or (without a latency datapoint) waiting while the
table's `LastUpdateTime` is older than the budget. With `require_fresh_objects` (the default),
changes DMS applied since the last successful check, or a reload finished since then, must also
show up as new lake objects of that table. No change and no new object is simply an idle hour.

The Asset event's `extra` carries the row counts per table (DMS's counters), each table's
validation state, the changes applied per table, the new lake objects (in all and per table), the
raw URI and the CDC lag.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param

from mlops_airflow.dag_defaults import DEFAULT_ARGS, HOURLY_RUN_TIMEOUT, USER_DEFINED_MACROS
from mlops_airflow.targets import step_operator

with DAG(
    dag_id="mlops_ingest",
    description="Check DMS replication of the source DB into the raw lake and emit the raw-data Asset",
    doc_md=__doc__,
    schedule="@hourly",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=HOURLY_RUN_TIMEOUT,
    default_args=DEFAULT_ARGS,
    user_defined_macros=USER_DEFINED_MACROS,
    tags=["mlops", "ingest", "dms"],
    params={
        "max_cdc_lag_seconds": Param(
            None,
            type=["null", "integer"],
            minimum=1,
            description="CDC lag bound; empty = replication.max_cdc_lag_seconds",
        ),
        "require_fresh_objects": Param(
            None,
            type=["null", "boolean"],
            description="Fail when changes DMS applied since the last check brought no new lake object; empty = config",
        ),
        "reload_tables": Param(
            [],
            type="array",
            items={"type": "string"},
            description='Tables to reload before the check (DMS ReloadTables), e.g. ["orders"]; ["*"] = every table',
        ),
        "max_validation_pending_seconds": Param(
            None,
            type=["null", "integer"],
            minimum=1,
            description="How long a table may await DMS validation; empty = replication.max_validation_pending_seconds",
        ),
    },
) as dag:
    dms_sync = step_operator("dms_sync")(
        task_id="dms_sync",
        replication_task_arn="{{ dms_task_arn() }}",
        poke_interval=60,  # aws: aws.dms_poll_interval_seconds, read at run time
        timeout=60 * 30,  # aws: dms_poll_interval_seconds x dms_max_attempts (at most 45 min), read at run time
        reload_tables="{{ params.reload_tables }}",
    )
    check_replication = step_operator("check_replication")(
        task_id="check_replication",
        replication_task_arn="{{ dms_task_arn() }}",
        max_cdc_lag_seconds="{{ params.max_cdc_lag_seconds or '' }}",
        require_fresh_objects="{{ '' if params.require_fresh_objects is none else params.require_fresh_objects }}",
        max_validation_pending_seconds="{{ params.max_validation_pending_seconds or '' }}",
    )
    dms_sync >> check_replication
