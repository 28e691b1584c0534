"""Deployment tooling: package the project for Amazon MWAA (``python -m mlops.deploy.mwaa_package``)."""
