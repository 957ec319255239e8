"""Results into reports: statistics, gates, paired A/B comparison, summary, junit.xml, report.html, merging shards."""
