# The Airflow image for `astro dev start` and for docker-compose.yaml.
#
# Base image: Astro Runtime 3.3-8, which ships Apache Airflow 3.3.2 (Astronomer's build
# 3.3.2+astro.1). That is the Airflow requirements.txt pins. Airflow 3 runtimes come
# from astrocrpublic.azurecr.io/runtime and are tagged <minor>-<patch>. Astronomer's
# runtime catalog lists 3.3-8 with Airflow 3.3.2 and Pythons 3.12, 3.13 and 3.14
# (3.14 is the default). No runtime since 3.2 ships Python 3.11.
#
# Python 3.12 is the nearest to the project's 3.11 (`make venv` and requirements.lock
# use 3.11). On 3.12 the lock needs one override, explained at the install step below.
#
# "-base" variant: the plain runtime image has ONBUILD triggers. They would install
# requirements.txt as soon as FROM runs, and with sagemaker-core's pin that file cannot
# be resolved on Python 3.12. The -base image has no triggers, so this file runs the
# same steps itself: packages.txt, then the lock, then the project copy.
FROM astrocrpublic.azurecr.io/runtime:3.3-8-python-3.12-base

USER root

# System packages from packages.txt: a Java 17 JRE for local Spark (pyspark 3.5),
# procps (Spark's launch scripts call `ps`) and libgomp1 (the OpenMP runtime for
# LightGBM). The RUN fails if the base image's Debian has no Java 17, with a message
# saying so. The symlink gives JAVA_HOME the same path on amd64 and arm64.
COPY packages.txt /tmp/packages.txt
RUN apt-get update \
    && grep -vE '^\s*(#|$)' /tmp/packages.txt | xargs apt-get install -y --no-install-recommends \
    && apt-get clean && rm -rf /var/lib/apt/lists/* /tmp/packages.txt \
    && java_bin="$(readlink -f "$(command -v java)")" \
    && ln -sfn "$(dirname "$(dirname "${java_bin}")")" /usr/lib/jvm/java-17 \
    && { java -version 2>&1 | grep -q 'version "17\.' \
         || { echo "packages.txt must install a Java 17 JRE: Spark 3.5 needs it" >&2; exit 1; }; }
ENV JAVA_HOME=/usr/lib/jvm/java-17

# Python packages from the uv lock, so the image has the versions the local .venv and
# the tests use. Three details:
#  - The Airflow distributions are left out. The image already has Astronomer's build
#    of 3.3.2 (3.3.2+astro.1), and PyPI's wheel would replace it and drop their patches.
#  - importlib-metadata is overridden. On Python >= 3.12, apache-airflow-core 3.3.2
#    needs importlib-metadata>=7.0, but sagemaker-core 2.x caps it below 7.0. The
#    3.11 lock pins 6.11.0. With this override, uv resolves the lock on 3.12 for amd64
#    and arm64 with one change: importlib-metadata 6.11.0 becomes 7.2.1.
#  - The build fails if the resulting Airflow is not 3.3.2.
COPY requirements.lock /tmp/requirements.lock
RUN (command -v uv >/dev/null || python -m pip install --no-cache-dir uv) \
    && grep -vE '^apache-airflow(-core|-task-sdk)?==' /tmp/requirements.lock > /tmp/requirements.image.lock \
    && printf 'importlib-metadata>=7.0,<8\n' > /tmp/overrides.txt \
    && uv pip install --system --no-cache --override /tmp/overrides.txt -r /tmp/requirements.image.lock \
    && rm -f /tmp/requirements.lock /tmp/requirements.image.lock /tmp/overrides.txt \
    && python -c "import airflow, sys; v = airflow.__version__; print('Airflow', v); sys.exit(not v.startswith('3.3.2'))"

USER astro

# The project, copied where Astro's ONBUILD step would put it (/usr/local/airflow).
# Only what runs in Airflow is copied; tests/ and pyproject.toml are there for
# `astro dev pytest`. Host state (.venv, .mlops) never enters the image, and with
# BuildKit it is not even sent as build context. docker-compose.yaml mounts dags/,
# include/ and plugins/ over these copies, so edits show up without a rebuild.
WORKDIR /usr/local/airflow
COPY --chown=astro:0 pyproject.toml ./
COPY --chown=astro:0 dags/ dags/
COPY --chown=astro:0 include/ include/
COPY --chown=astro:0 plugins/ plugins/
COPY --chown=astro:0 tests/ tests/

# `mlops` (include/mlops) is imported as a top-level package. Airflow adds plugins/ to
# sys.path itself, but not include/. With ${PYTHONPATH:+:...}, an unset PYTHONPATH
# leaves no trailing ":". An empty entry would put the working directory on sys.path.
ENV PYTHONPATH=/usr/local/airflow/include${PYTHONPATH:+:$PYTHONPATH}
# All local state goes here: lake, source DB, registry, endpoints, logs.
# docker-compose.yaml mounts ./.mlops on this path.
ENV MLOPS_HOME=/usr/local/airflow/.mlops
# The target switch. `local` runs the offline stand-ins; MWAA sets `aws`.
ENV MLOPS_TARGET=local
# Local Spark binds to loopback only: no reverse-DNS lookup, nothing listening on the network.
ENV SPARK_LOCAL_IP=127.0.0.1
