"""The zoo client: published, versioned, checksummed populations."""
