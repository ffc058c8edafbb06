"""The fault matrix: end-to-end tests, one per fault, each with exact accounting."""
