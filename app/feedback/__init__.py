"""Response records and feedback: what was answered (never raw PII), how users rated it, and the export that feeds
the trainer. ``model`` holds the records, ``layout`` where and how they live in Redis."""
