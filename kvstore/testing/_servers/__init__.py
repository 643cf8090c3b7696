"""Servers the tests and the benchmark start on demand (PostgreSQL, DynamoDB Local); private."""
