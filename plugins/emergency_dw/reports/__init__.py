"""Reports for auditors and engineers: Great Expectations Data Docs, and more to come."""
