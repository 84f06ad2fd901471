"""poolctl's speed and resource benchmarks against the XAPI simulator; see README.md."""
