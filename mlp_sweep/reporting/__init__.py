"""Reporting: a sweep's runs read back, compared (statistics without MLflow), written as tables and figures."""
