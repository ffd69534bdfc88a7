"""QA: recorded calls replayed into a searchable archive, with scorecards and reports."""
