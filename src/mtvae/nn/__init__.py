"""Network bodies shared by all models."""
