"""Text utilities shared by stages, audits and reports: spaCy and presidio loading, scrubbing PII from report
text, identity terms."""
