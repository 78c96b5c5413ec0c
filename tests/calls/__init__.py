"""Client-call recording: records, timeouts, sites, attribution, pairs and verdicts, the audit, the report."""
