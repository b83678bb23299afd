"""What a local run shows: the report (summary, cases, figures) and the investigation page."""
