# The Airflow image for docker-compose.yaml: MWAA's Airflow on MWAA's Python, with MWAA's pins.
#
# Base: Apache Airflow's own slim image of the production version (infra/mwaa/versions.env:
# Airflow 3.3.1 on Python 3.12; a test keeps the ARG below equal to it). Its Python packages
# are installed the way MWAA installs an environment's requirements: with MWAA's constraint
# files (infra/mwaa/, verbatim copies), so the image has MWAA's versions on MWAA's Python;
# no Python 3.11 overrides are needed here.
#
# The job runtimes (envs/glue, envs/sagemaker) become venvs under /opt/mlops/venvs, outside
# the mounted project folders, and MLOPS_RUNTIMES points there. They are installed from their
# locks (resolved for Python 3.11, Glue 5.0's Python; every pinned package ships Python 3.12
# wheels too).
#
# Astro CLI: `astro dev` builds from an Astro Runtime base image. To use it, replace the FROM
# line with the Astro Runtime tag that ships the Airflow version above; the project layout
# (dags/, include/, plugins/, requirements.txt, packages.txt, airflow_settings.yaml) is
# Astro's already.
ARG AIRFLOW_VERSION=3.3.1
ARG PYTHON_VERSION=3.12
FROM apache/airflow:slim-${AIRFLOW_VERSION}-python${PYTHON_VERSION}
ARG AIRFLOW_VERSION
ARG PYTHON_VERSION

USER root

# System packages from packages.txt: a Java 17 JRE for local Spark (pyspark 3.5), procps
# (Spark's launch scripts call `ps`) and libgomp1 (the OpenMP runtime for LightGBM). The RUN
# fails, saying why, if the base image's Debian has no Java 17. The symlink gives JAVA_HOME the
# same path on amd64 and arm64.
COPY packages.txt /tmp/packages.txt
RUN apt-get update \
    && grep -vE '^\s*(#|$)' /tmp/packages.txt | xargs apt-get install -y --no-install-recommends \
    && apt-get clean && rm -rf /var/lib/apt/lists/* /tmp/packages.txt \
    && java_bin="$(readlink -f "$(command -v java)")" \
    && ln -sfn "$(dirname "$(dirname "${java_bin}")")" /usr/lib/jvm/java-17 \
    && { java -version 2>&1 | grep -q 'version "17\.' \
         || { echo "packages.txt must install a Java 17 JRE: Spark 3.5 needs it" >&2; exit 1; }; } \
    && mkdir -p /opt/mlops /usr/local/airflow && chown airflow:0 /opt/mlops /usr/local/airflow
ENV JAVA_HOME=/usr/lib/jvm/java-17

USER airflow

# The Airflow environment: requirements.txt under MWAA's constraints and essential
# constraints, Airflow itself pinned, as MWAA installs it. The build fails if Airflow moved.
COPY --chown=airflow:0 requirements.txt /tmp/mlops/requirements.txt
COPY --chown=airflow:0 infra/mwaa/ /tmp/mlops/mwaa/
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" -r /tmp/mlops/requirements.txt \
        -c "/tmp/mlops/mwaa/constraints-${AIRFLOW_VERSION}-python${PYTHON_VERSION}.txt" \
        -c "/tmp/mlops/mwaa/essential-constraints-${AIRFLOW_VERSION}.txt" \
    && python -c "import airflow, sys; print('Airflow', airflow.__version__); sys.exit(airflow.__version__ != '${AIRFLOW_VERSION}')"

# The job runtimes, each from its own lock, in its own venv.
COPY --chown=airflow:0 envs/ /tmp/mlops/envs/
RUN for runtime in glue sagemaker; do \
        python -m venv "/opt/mlops/venvs/${runtime}" \
        && "/opt/mlops/venvs/${runtime}/bin/pip" install --no-cache-dir -r "/tmp/mlops/envs/${runtime}/requirements.lock" \
        || exit 1; \
    done \
    && rm -rf /tmp/mlops

# The project, where docker-compose.yaml mounts it (the Astro layout's /usr/local/airflow).
# Only what runs in Airflow is copied; docker-compose.yaml mounts dags/, include/ and plugins/
# over these copies, so edits show up without a rebuild. Host state (.venv, .mlops) never
# enters the image.
ENV AIRFLOW_HOME=/usr/local/airflow
WORKDIR /usr/local/airflow
COPY --chown=airflow:0 pyproject.toml ./
COPY --chown=airflow:0 dags/ dags/
COPY --chown=airflow:0 include/ include/
COPY --chown=airflow:0 plugins/ plugins/
# The project package, editable, so `mlops`, `mlops_airflow` and the Airflow plugin entry point
# resolve to the mounted sources.
RUN pip install --no-cache-dir --no-deps -e .

# All local state goes here: lake, source DB, registry, endpoints, logs (mounted from ./.mlops).
ENV MLOPS_HOME=/usr/local/airflow/.mlops
ENV MLOPS_RUNTIMES=/opt/mlops/venvs
# The target switch. `local` runs the offline stand-ins; MWAA sets `aws` (infra/mwaa/startup.sh).
ENV MLOPS_TARGET=local
# Local Spark binds to loopback only: no reverse-DNS lookup, nothing listening on the network.
ENV SPARK_LOCAL_IP=127.0.0.1
