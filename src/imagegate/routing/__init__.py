"""Which deployment serves a job: candidates in order, for failover."""
