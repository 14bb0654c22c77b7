"""One small wrapper per AWS service: the only place boto3 is called.

Each takes an optional boto3 client (tests inject one); the default client is created on first use, so
importing a wrapper does not import boto3. Every botocore error is turned into an ``fmops.errors`` error.
"""
