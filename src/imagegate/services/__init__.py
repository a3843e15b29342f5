"""The use cases: submit and run jobs, answer queries, manage keys. One transaction each; ports only."""
