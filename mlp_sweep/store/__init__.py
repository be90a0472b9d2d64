"""Bookkeeping: the MLflow store and its login, a run's identity, claims and resume, bulk history reads."""
