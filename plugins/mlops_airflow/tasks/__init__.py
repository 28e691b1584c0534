"""Bodies of the DAGs' ``@task`` functions, one module per stage; the DAG files only wire them."""
