"""SQLAlchemy connect arguments for local Airflow's SQLite metadata DB (``make airflow``).

sqlite3 waits 5 s for a lock by default. Standalone runs the scheduler, the DAG processor, the
triggerer, the API server and the task processes against one SQLite file; on a busy 2-core
machine a writer can hold the lock longer, and the scheduler then dies on "database is locked"
(standalone does not restart it). Waiting up to a minute turns that into a pause.
"""

CONNECT_ARGS = {"timeout": 60}
