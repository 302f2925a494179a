"""Singer tap for the Bayut Pull API lead data."""
